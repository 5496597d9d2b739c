"""8. The peer: FastAPI + fastapi-users (tests/bench/peer/peer_app.py) in its own venv, on a fresh
PostgreSQL database, driven exactly as ours is (same wrk settings, same 20 tasks)."""

from __future__ import annotations

import hashlib
import secrets
import subprocess
import sys
import urllib.parse
from pathlib import Path

import httpx

from tests.bench import rows, wrk
from tests.bench.measure import LOGIN_CONNECTIONS, Bench, cpu_of, errors_of, server_cpu_of
from tests.bench.procs import PASSWORD, Service
from tests.bench.report import n
from tests.bench.stack import TASKS_PER_USER
from tests.infra import ROOT

PEER_DIR = Path(__file__).resolve().parent / "peer"
VENV = ROOT / "tests" / "artifacts" / "peer-venv"
INSTALL_TIMEOUT_S = 900


def ensure_venv() -> Path:
    """tests/artifacts/peer-venv with requirements.txt installed; reinstalled when it changes."""
    requirements = PEER_DIR / "requirements.txt"
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
    stamp = VENV / ".bench-requirements-sha256"
    python = VENV / "bin" / "python"
    if python.exists() and stamp.exists() and stamp.read_text().strip() == digest:
        return python
    if not python.exists():
        created = subprocess.run(
            [sys.executable, "-m", "venv", str(VENV)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if created.returncode != 0:
            raise RuntimeError(f"peer venv not created: {created.stderr[-300:]}")
    print(f"[bench] installing the peer into {VENV} …", flush=True)
    installed = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-input", "-r", str(requirements)],
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT_S,
        check=False,
    )
    if installed.returncode != 0:
        errors = [line for line in installed.stderr.splitlines() if "ERROR" in line]
        raise RuntimeError(
            f"peer install failed: {' '.join(errors[-2:]) or installed.stderr[-300:]}"
        )
    stamp.write_text(digest + "\n")
    return python


def start_peer(bench: Bench, python: Path, database_url: str) -> Service:
    env = {"PEER_DATABASE_URL": database_url, "PYTHONPATH": str(PEER_DIR)}
    service = Service("peer", env, bench.workdir / "peer", cwd=PEER_DIR)
    service.argv = [
        str(python),
        "-m",
        "uvicorn",
        "peer_app:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(service.port),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    return bench.resources.start(service)


def peer(bench: Bench) -> None:
    python = ensure_venv()
    database_url = bench.resources.database("peer")
    service = start_peer(bench, python, database_url)
    try:
        email = f"peer-{secrets.token_hex(4)}@example.com"
        with httpx.Client(base_url=service.url, timeout=30) as client:
            registered = client.post("/auth/register", json={"email": email, "password": PASSWORD})
            if registered.status_code != 201:
                raise RuntimeError(f"peer register: {registered.status_code} {registered.text}")
            user_id = registered.json()["id"]
            form = {"username": email, "password": PASSWORD}
            logged_in = client.post("/auth/jwt/login", data=form)
            if logged_in.status_code != 200:
                raise RuntimeError(f"peer login: {logged_in.status_code} {logged_in.text}")
            bearer = {"Authorization": f"Bearer {logged_in.json()['access_token']}"}
            path = f"/api/{user_id}/tasks"
            for number in range(TASKS_PER_USER):
                created = client.post(
                    path,
                    json={"title": f"task {number}", "description": "a task of the benchmark"},
                    headers=bearer,
                )
                if created.status_code != 201:
                    raise RuntimeError(f"peer task: {created.status_code} {created.text}")
            listed = client.get(path, headers=bearer)
            if listed.status_code != 200 or listed.json()["total"] != TASKS_PER_USER:
                raise RuntimeError(f"peer list: {listed.status_code} {listed.text[:200]}")
        login_script = wrk.post_script(
            urllib.parse.urlencode(form), "application/x-www-form-urlencoded"
        )
        logins = bench.run_wrk(
            f"{service.url}/auth/jwt/login",
            login_script,
            servers=[service],
            connections=LOGIN_CONNECTIONS,
        )
        listing = bench.loaded(service.url + path, wrk.get_script(bearer), servers=[service])
    finally:
        service.stop()

    ours_login = bench.ours.get("login_rps")
    bench.report.info(
        rows.PEER_LOGIN,
        measured=(f"ours {ours_login:.1f}" if ours_login else "ours not measured")
        + f" vs peer {logins.ok_rps:.1f} logins/s (peer p50 {logins.p50_ms:.0f} ms, p99 "
        f"{logins.p99_ms:.0f} ms, {LOGIN_CONNECTIONS} connections; peer {server_cpu_of(logins)}; "
        f"{cpu_of(logins)})" + errors_of(logins),
        ratio=f"{ours_login / logins.ok_rps:.2f}" if ours_login and logins.ok_rps else "—",
    )
    ours_list, ours_us = bench.ours.get("list_rps"), bench.ours.get("list_us")
    peer_us = listing.server_us_per_request
    cpu_ratio = f"; by server CPU {peer_us / ours_us:.2f}" if ours_us and peer_us else ""
    bench.report.info(
        rows.PEER_LIST,
        measured=(f"ours {n(ours_list)}" if ours_list else "ours not measured")
        + f" vs peer {n(listing.ok_rps)} req/s (peer p99 {listing.p99_ms:.1f} ms; server CPU "
        f"ours {ours_us or 0:,.0f} vs peer {peer_us or 0:,.0f} µs/request{cpu_ratio}; "
        f"{cpu_of(listing)})" + errors_of(listing),
        ratio=f"{ours_list / listing.ok_rps:.2f}" if ours_list and listing.ok_rps else "—",
    )
