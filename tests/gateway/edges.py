"""The two edges the gateway suite runs against, each a real process on a loopback port: the
Python gateway (`python -m gateway serve`) and nginx on the configuration `python -m gateway
render-config` writes from the same GATEWAY_* variables."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from gateway.edge_engine.nginx_process import (
    INSTALL_HINT,
    local_user,
    nginx_binary,
    nginx_command,
)
from tests.infra import ServiceProcess, free_port, run_cli, unavailable

PYTHON = "python"
NGINX = "nginx"
EDGES = (PYTHON, NGINX)


def start_edge(kind: str, workdir: Path, env: Mapping[str, str]) -> ServiceProcess:
    """`kind`'s edge, configured by `env` (GATEWAY_* variables), live on a free port."""
    workdir.mkdir(parents=True, exist_ok=True)
    if kind == PYTHON:
        return ServiceProcess("gateway", env=env, workdir=workdir).start()
    binary = nginx_binary()
    if binary is None:
        unavailable(INSTALL_HINT)
        raise AssertionError("unreachable")  # unavailable() skips or fails
    port = free_port()
    directory = workdir / f"nginx-{port}"
    rendered = run_cli(
        "gateway",
        "render-config",
        "--dir",
        str(directory),
        "--workers",
        "1",
        *(["--user", user] if (user := local_user()) else []),
        env={**env, "GATEWAY_HOST": "127.0.0.1", "GATEWAY_PORT": str(port)},
        cwd=workdir,
    )
    assert rendered.returncode == 0, rendered.stderr
    edge = ServiceProcess(
        "gateway",
        env=env,
        workdir=workdir,
        port=port,
        name="nginx",
        argv=nginx_command(binary, directory / "nginx.conf"),
    )
    return edge.start()
