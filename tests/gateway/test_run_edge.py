"""`make run-edge` (`python -m gateway.stack --edge`): the stack of `make run` with nginx in the
Python gateway's place; without nginx it says how to install it and fails."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx

from gateway.edge_engine.nginx_process import nginx_binary
from tests.e2e.test_make_run import launch
from tests.infra import unavailable, wait_until


def test_run_edge_serves_through_nginx_and_stops(tmp_path: Path) -> None:
    if nginx_binary() is None:
        unavailable("nginx is not installed (apt-get install nginx)")
    process, lines, env = launch(tmp_path, "--edge")
    try:
        wait_until(
            lambda: any(line.startswith("ready:") for line in lines) or process.poll() is not None,
            timeout=90,
            what="the stack to print its URLs",
        )
        assert process.poll() is None, "".join(lines)
        edge = f"http://127.0.0.1:{env['GATEWAY_PORT']}"
        registered = httpx.post(
            f"{edge}/auth/register",
            json={"email": "edge@example.com", "password": "correct horse battery staple"},
        )
        assert registered.status_code == 201
        assert registered.headers["server"] == "nginx"
        user = registered.json()
        tasks = httpx.get(
            f"{edge}/api/{user['user']['id']}/tasks",
            headers={"Authorization": f"Bearer {user['access_token']}"},
        )
        assert tasks.status_code == 200
        assert httpx.get(f"{edge}/").status_code == 200  # the web client, from nginx
        assert (tmp_path / ".data" / "edge" / "nginx.conf").exists()
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0, "".join(lines[-20:])
    for port in (env["AUTH_PORT"], env["TODO_PORT"], env["GATEWAY_PORT"]):
        try:
            httpx.get(f"http://127.0.0.1:{port}/health/live", timeout=1)
        except httpx.ConnectError:
            continue
        raise AssertionError(f"something still answers on {port}")


def test_run_edge_without_nginx_says_how_to_install_it(tmp_path: Path) -> None:
    process, lines, _ = launch(tmp_path, "--edge", EDGE_NGINX=str(tmp_path / "no-nginx-here"))
    assert process.wait(timeout=60) != 0
    assert any("apt-get install nginx" in line for line in lines), "".join(lines)
