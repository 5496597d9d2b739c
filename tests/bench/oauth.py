"""The OAuth rows: client-credentials grants per second with each client authentication
method against the refresh rotation rate of the same run, and an introspection's server CPU
against a protected todo request's. BENCH ONLY."""

from __future__ import annotations

import base64
import json
import time
import urllib.parse
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
from joserfc import jwt
from joserfc.jwk import ECKey

from tests.bench import rows, wrk
from tests.bench.report import n
from tests.infra import run_cli

if TYPE_CHECKING:
    from tests.bench.measure import Bench
    from tests.bench.stack import Platform

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ISSUER = "http://127.0.0.1:8000"  # the bench's auth runs with the default AUTH_ISSUER


def _create_client(platform: Platform, name: str, *args: str) -> dict[str, str]:
    auth = platform.auth
    done = run_cli(
        "auth_service", "clients", "create", name, *args, "--json", env=auth.env, cwd=auth.workdir
    )
    if done.returncode != 0:
        raise RuntimeError(f"clients create failed: {done.stderr[-300:]}")
    created: dict[str, str] = json.loads(done.stdout)
    return created


def _basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def _form_script(body: str, authorization: str) -> str:
    return (
        wrk.post_script(body, "application/x-www-form-urlencoded")
        + f'wrk.headers["Authorization"] = {wrk.lua_string(authorization)}\n'
    )


def _lines_script(path: Path, request_path: str) -> str:
    """Each request posts the next line of the file as a form body (each line used once)."""
    return wrk.each_line_once(
        path,
        f"""wrk.format("POST", {wrk.lua_string(request_path)},
    {{["Content-Type"] = "application/x-www-form-urlencoded"}}, line)""",
    )


def _assertion_file(path: Path, client_id: str, key: ECKey, count: int) -> Path:
    now = int(time.time())
    lines = []
    for _ in range(count):
        assertion = jwt.encode(
            {"alg": "ES256", "kid": key.kid},
            {
                "iss": client_id,
                "sub": client_id,
                "aud": f"{ISSUER}/oauth/token",
                "iat": now,
                "exp": now + 3000,
                "jti": uuid.uuid4().hex,
            },
            key,
        )
        lines.append(
            urllib.parse.urlencode(
                {
                    "grant_type": "client_credentials",
                    "client_assertion_type": ASSERTION_TYPE,
                    "client_assertion": assertion,
                }
            )
        )
    path.write_text("\n".join(lines) + "\n")
    return path


def client_credentials(bench: Bench, platform: Platform) -> None:
    """Grants per second with each method, on the platform's auth (PostgreSQL + Redis), ÷ the
    refresh rotations per second measured on the same auth in this run."""
    auth = platform.auth
    secret = _create_client(platform, "bench-secret", "--scope", "tasks:read", "--secret")
    key = ECKey.generate_key("P-256", parameters={"kid": "bench-1"})
    jwks = bench.workdir / "bench-client.jwks.json"
    jwks.write_text(json.dumps({"keys": [key.as_dict(private=False)]}))
    _create_client(platform, "bench-jwt", "--scope", "tasks:read", "--jwks-file", str(jwks))
    basic = _basic(secret["client_id"], secret["client_secret"])
    check = httpx.post(
        f"{auth.url}/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": basic},
    )
    check.raise_for_status()
    by_secret = bench.loaded(
        auth.url + "/oauth/token",
        _form_script("grant_type=client_credentials", basic),
        servers=[auth],
    )
    calibration = _assertion_file(bench.workdir / "assertions-1.txt", "bench-jwt", key, 3000)
    trial = bench.run_wrk(
        auth.url, _lines_script(calibration, "/oauth/token"), seconds=1, script_args=("2",)
    )
    count = int(max(trial.ok_rps, 300.0) * bench.timing.wrk_s * 1.6) + 2000
    assertions = _assertion_file(bench.workdir / "assertions-2.txt", "bench-jwt", key, count)
    by_key = bench.run_wrk(
        auth.url, _lines_script(assertions, "/oauth/token"), servers=[auth], script_args=("2",)
    )
    refresh = bench.ours.get("refresh_rps")
    figures = (
        f"client_secret_basic {n(by_secret.ok_rps)}/s (p99 {by_secret.p99_ms:.1f} ms, "
        f"{by_secret.server_us_per_request or 0:,.0f} µs server CPU each); private_key_jwt "
        f"(ES256, a new jti each) {n(by_key.ok_rps)}/s (p99 {by_key.p99_ms:.1f} ms, "
        f"{by_key.server_us_per_request or 0:,.0f} µs each)"
    )
    faults = [r.faults() for r in (by_secret, by_key) if r.faults()]
    if faults:
        figures += "; errors: " + ", ".join(faults)
    if refresh is None:
        bench.report.info(
            rows.CLIENT_CREDENTIALS,
            measured=figures + "; refresh rotations not measured in this run",
            ratio="—",
        )
        return
    worst = min(by_secret.ok_rps, by_key.ok_rps) / refresh
    bench.report.judge(
        rows.CLIENT_CREDENTIALS,
        measured=f"{figures}; refresh rotations (Redis) {n(refresh)}/s in this run",
        ratio=f"{by_secret.ok_rps / refresh:.2f} / {by_key.ok_rps / refresh:.2f}",
        ok=worst >= 1.0 and not faults,
    )


def introspection(bench: Bench, platform: Platform) -> None:
    """Server CPU of an introspection (client_secret_basic, a person's access token: the
    verified-token cache hit, the session looked up in Redis) ÷ the todo service's CPU for a
    protected list with the same kind of token; alternating runs, the median of the rounds."""
    auth, todo = platform.auth, platform.todo_on
    created = _create_client(platform, "bench-introspect", "--scope", "introspect", "--secret")
    basic = _basic(created["client_id"], created["client_secret"])
    token = platform.fresh_token()
    answer = httpx.post(
        f"{auth.url}/oauth/introspect", data={"token": token}, headers={"Authorization": basic}
    )
    if answer.status_code != 200 or answer.json().get("active") is not True:
        raise RuntimeError(f"introspection check failed: {answer.status_code} {answer.text[:200]}")
    introspect = _form_script(urllib.parse.urlencode({"token": token}), basic)
    listing = wrk.get_script({"Authorization": f"Bearer {token}"})
    bench.run_wrk(auth.url + "/oauth/introspect", introspect, seconds=bench.timing.warmup_s)
    bench.run_wrk(todo.url + platform.tasks_path, listing, seconds=bench.timing.warmup_s)
    ratios: list[float] = []
    pairs: list[tuple[wrk.WrkResult, wrk.WrkResult]] = []
    for round_no in range(bench.timing.rounds):
        order = [("i", auth.url + "/oauth/introspect", introspect, auth),
                 ("t", todo.url + platform.tasks_path, listing, todo)]  # fmt: skip
        if round_no % 2:
            order.reverse()
        results = {
            tag: bench.run_wrk(url, script, servers=[server], seconds=bench.timing.pair_s)
            for tag, url, script, server in order
        }
        i_us, t_us = results["i"].server_us_per_request, results["t"].server_us_per_request
        if i_us and t_us:
            ratios.append(i_us / t_us)
        pairs.append((results["i"], results["t"]))
    if not ratios:
        raise RuntimeError("no server CPU measured")
    ratios.sort()
    median = ratios[len(ratios) // 2]
    best_i = max((p[0] for p in pairs), key=lambda r: r.ok_rps)
    best_t = max((p[1] for p in pairs), key=lambda r: r.ok_rps)
    faults = [r.faults() for pair in pairs for r in pair if r.faults()]
    bench.report.judge(
        rows.INTROSPECTION,
        measured=f"rounds {', '.join(f'{r:.2f}' for r in ratios)}; fastest runs "
        f"{n(best_i.ok_rps)} introspections/s ({best_i.server_us_per_request or 0:,.0f} µs "
        f"auth CPU each) vs {n(best_t.ok_rps)} lists/s ({best_t.server_us_per_request or 0:,.0f}"
        f" µs todo CPU each)" + (f"; errors: {', '.join(faults)}" if faults else ""),
        ratio=f"{median:.2f} ×",
        ok=median <= 1.5 and not faults,
    )
