"""`make run`: the whole platform on one machine — auth, todo and the gateway as three
processes, migrations applied first, logs interleaved with a prefix, Ctrl-C stops all three.
`make run-edge` (`--edge`): the same with nginx in the gateway's place, on the configuration
`python -m gateway render-config` writes (under .data/edge/).

Embedded defaults (SQLite files under .data/, SQL refresh store, in-process rate limits)
unless AUTH_DATABASE_URL, TODO_DATABASE_URL, AUTH_REDIS_URL or GATEWAY_REDIS_URL say otherwise.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

READY_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Service:
    name: str
    module: str
    prefix: str
    default_port: int

    def port(self, env: Mapping[str, str]) -> int:
        return int(env.get(f"{self.prefix}_PORT", self.default_port))

    def url(self, env: Mapping[str, str]) -> str:
        host = env.get(f"{self.prefix}_HOST", "127.0.0.1")
        return f"http://{host}:{self.port(env)}"


AUTH = Service("auth", "auth_service", "AUTH", 8001)
TODO = Service("todo", "todo_service", "TODO", 8002)
GATEWAY = Service("gateway", "gateway", "GATEWAY", 8000)


def stack_environment(base: Mapping[str, str]) -> dict[str, str]:
    """Point the services at each other when only their ports were changed."""
    env = {**base, "PYTHONUNBUFFERED": "1"}
    env.setdefault("TODO_JWKS_URL", f"{AUTH.url(env)}/.well-known/jwks.json")
    env.setdefault("GATEWAY_AUTH_URL", AUTH.url(env))
    env.setdefault("GATEWAY_TODO_URL", TODO.url(env))
    return env


def _relay(name: str, stream: object) -> None:
    for line in iter(stream.readline, b""):  # type: ignore[attr-defined]
        sys.stdout.write(f"{name:<8}| {line.decode(errors='replace')}")
        sys.stdout.flush()


def _migrate(service: Service, env: Mapping[str, str]) -> None:
    done = subprocess.run(  # noqa: S603 - our own interpreter and module, no shell
        [sys.executable, "-m", service.module, "migrate"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        sys.stderr.write(f"{service.name}: migrations failed\n{done.stderr}")
        raise SystemExit(1)
    print(f"{service.name:<8}| migrations applied")


TODO_CLIENT = "todo-service"


def _auth_cli(env: Mapping[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own interpreter and module, no shell
        [sys.executable, "-m", "auth_service", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def _provision_todo_client(env: dict[str, str]) -> None:
    """The todo service reads account events as a client of its own (`events:read`): made on
    the first run, given a new secret on each (the old one ends; nothing keeps it on disk)."""
    if env.get("TODO_CLIENT_ID"):
        return
    import json

    known = _auth_cli(env, "clients", "show", TODO_CLIENT, "--json").returncode == 0
    args = (
        ["clients", "rotate-secret", TODO_CLIENT, "--overlap", "0", "--json"]
        if known
        else ["clients", "create", TODO_CLIENT, "--scope", "events:read", "--secret", "--json"]
    )
    done = _auth_cli(env, *args)
    if done.returncode != 0:
        sys.stderr.write(f"todo's client could not be provisioned: {done.stderr}")
        raise SystemExit(1)
    env["TODO_CLIENT_ID"] = TODO_CLIENT
    env["TODO_CLIENT_SECRET"] = json.loads(done.stdout)["client_secret"]
    print(f"{'auth':<8}| client {TODO_CLIENT} ready (account events for the todo service)")


def _wait_ready(service: Service, env: Mapping[str, str], process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    url = f"{service.url(env)}/health/ready"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{service.name} exited with status {process.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{service.name} was not ready after {READY_TIMEOUT_S:.0f} s ({url})")


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()


def _edge_command(env: Mapping[str, str]) -> list[str] | None:
    """nginx on a configuration rendered from the same GATEWAY_* variables; None, having said
    how to install it, when nginx is not there."""
    from gateway.config import Settings
    from gateway.edge_engine.nginx_process import (
        INSTALL_HINT,
        local_user,
        nginx_binary,
        nginx_command,
        write_config,
    )
    from kit.settings import Env, load_or_exit

    binary = nginx_binary()
    if binary is None:
        sys.stderr.write(f"make run-edge: {INSTALL_HINT}\n")
        return None
    settings = load_or_exit(lambda: Settings.from_env(Env(env)))
    config = write_config(settings, Path(".data/edge").resolve(), user=local_user())
    print(f"edge    | nginx ({binary}) on {config}")
    return nginx_command(binary, config)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway.stack")
    parser.add_argument("--edge", action="store_true", help="nginx in the gateway's place")
    arguments = parser.parse_args()
    env = stack_environment(os.environ)
    edge = _edge_command(env) if arguments.edge else None
    if arguments.edge and edge is None:
        return 1
    for service in (AUTH, TODO):
        _migrate(service, env)
    _provision_todo_client(env)
    processes: list[subprocess.Popen[bytes]] = []
    stopping = threading.Event()

    def on_signal(_signum: int, _frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        for service in (AUTH, TODO, GATEWAY):
            command = [sys.executable, "-m", service.module, "serve"]
            if service is GATEWAY and edge is not None:
                command = edge
            process = subprocess.Popen(  # noqa: S603 - our own interpreter and module, or nginx
                command,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            processes.append(process)
            threading.Thread(
                target=_relay, args=(service.name, process.stdout), daemon=True
            ).start()
            _wait_ready(service, env, process)
    except RuntimeError as error:
        sys.stderr.write(f"stack failed to start: {error}\n")
        _stop(processes)
        return 1
    gateway = GATEWAY.url(env)
    print(
        f"\nready: web client {gateway}/  API {gateway}/auth, {gateway}/api  "
        f"(auth {AUTH.url(env)}, todo {TODO.url(env)}); Ctrl-C stops all three\n",
        flush=True,
    )
    while not stopping.is_set():
        for service, process in zip((AUTH, TODO, GATEWAY), processes, strict=True):
            if process.poll() is not None:
                sys.stderr.write(f"{service.name} exited with status {process.returncode}\n")
                _stop(processes)
                return 1
        stopping.wait(0.5)
    _stop(processes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
