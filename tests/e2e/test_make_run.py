"""`make run` itself (`python -m gateway.stack`): three processes up with migrations applied,
the URLs printed when ready, Ctrl-C stops all three; a service that cannot start fails it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx

from tests.infra import ROOT, free_port, wait_until


def launch(
    workdir: Path, *args: str, **extra: str
) -> tuple[subprocess.Popen[str], list[str], dict[str, str]]:
    """`python -m gateway.stack ARGS` on free ports in `workdir`; its output collected."""
    ports = {"AUTH_PORT": free_port(), "TODO_PORT": free_port(), "GATEWAY_PORT": free_port()}
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        **{name: str(port) for name, port in ports.items()},
        **extra,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway.stack", *args],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []

    def collect() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)

    threading.Thread(target=collect, daemon=True).start()
    return process, lines, env


def test_make_run_starts_serves_and_stops(tmp_path: Path) -> None:
    process, lines, env = launch(tmp_path)
    try:
        wait_until(
            lambda: any(line.startswith("ready:") for line in lines) or process.poll() is not None,
            timeout=90,
            what="the stack to print its URLs",
        )
        assert process.poll() is None, "".join(lines)
        gateway = f"http://127.0.0.1:{env['GATEWAY_PORT']}"
        registered = httpx.post(
            f"{gateway}/auth/register",
            json={"email": "run@example.com", "password": "correct horse battery staple"},
        )
        assert registered.status_code == 201
        assert httpx.get(f"{gateway}/").status_code == 200  # the web client
        assert (tmp_path / ".data" / "auth.db").exists() and (
            tmp_path / ".data" / "todo.db"
        ).exists()
        assert any(line.startswith("gateway | ") for line in lines)
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0, "".join(lines[-20:])
    for port in (env["AUTH_PORT"], env["TODO_PORT"], env["GATEWAY_PORT"]):
        try:
            httpx.get(f"http://127.0.0.1:{port}/health/live", timeout=1)
        except httpx.ConnectError:
            continue
        raise AssertionError(f"something still answers on {port}")


def test_make_run_fails_when_a_service_cannot_start(tmp_path: Path) -> None:
    process, lines, _ = launch(tmp_path, AUTH_SIGNING_ALG="none")
    assert process.wait(timeout=60) != 0
    assert any("AUTH_SIGNING_ALG" in line for line in lines), "".join(lines)
