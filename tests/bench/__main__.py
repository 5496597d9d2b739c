"""`make bench`: every performance target of DESIGN.md measured in one run, as one table.

    PYTHONPATH=. .venv/bin/python -m tests.bench          # ≈ 6 minutes
    BENCH_QUICK=1 PYTHONPATH=. .venv/bin/python -m tests.bench   # shorter runs, same rows
    BENCH_ONLY=gateway,logins …   # only the steps whose name holds one of the words

Prints the table and writes it to tests/artifacts/bench.md. A measurement that cannot be made
(wrk missing, a server down, the peer not installable offline) is a row saying why.
"""

from __future__ import annotations

import datetime
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from types import FrameType

from tests.bench import betterauth_peer, rows, wrk
from tests.bench.adapters import verifier_adapters
from tests.bench.measure import CORES, Bench, Timing, run_platform
from tests.bench.peer_bench import peer
from tests.bench.procs import Resources
from tests.infra import ROOT

ARTIFACTS = ROOT / "tests" / "artifacts"
WORKDIR = ARTIFACTS / "bench-run"
OUTPUT = ARTIFACTS / "bench.md"

WRK_ROWS = [
    rows.THROUGHPUT_DIRECT,
    rows.THROUGHPUT_GATEWAY,
    rows.LOGINS,
    rows.LOGIN_FLOOR,
    rows.STALL,
    rows.REFRESH_REDIS,
    rows.REFRESH_SQL,
    rows.GATEWAY_LATENCY,
    rows.GATEWAY_IDLE,
    rows.EDGE_LATENCY,
    rows.EDGE_THROUGHPUT,
    rows.EDGE_PYTHON,
    rows.JWKS,
    rows.ASGI,
    rows.PEER_LOGIN,
    rows.PEER_LIST,
    *betterauth_peer.ROWS,
]

NOTES = """\
- **auth off** is `tests/bench/authoff.py`, BENCH ONLY: the todo app built by its own factory
  and served by `kit.server.serve`, with the TokenVerifier replaced by a stub whose `verify`
  returns fixed claims. Everything else (middleware, handler, PostgreSQL query) is the same.
- Throughput runs: wrk, 2 threads, 32 connections, the same token on every request (so the
  verified-token cache is hit). A/B pairs (auth on/off, direct/gateway latency, uvicorn/granian):
  a warm-up run of each, then rounds of one run of each back to back, the order turned round
  every round (AB BA AB BA: 4 rounds of 5 s in a full run, 2 of 3 s with BENCH_QUICK); each
  round gives its own ratio (or added p50), and the median of the rounds judges. The req/s,
  p99 and CPU figures beside it are each variant's fastest run.
  "server CPU" is the servers' own CPU per request (from /proc), which other work on the machine
  moves far less than req/s; "by server CPU" is the ratio those figures give.
  One server process per service (uvicorn unless noted), PostgreSQL databases, 20 tasks listed.
- Logins: wrk, 64 connections, auth with `AUTH_HASH_QUEUE=64` so that all 64 are admitted
  (2 hashing, 62 queued) rather than answered 503; the Argon2 bound is cores ÷ the median time
  of one verify at m=19456 t=2 p=1 as the service runs it (`PasswordHashing.verify_sync`,
  libsodium), measured in-process 30 times just before and 30 times just after the run (once
  the logins wrk abandoned have drained), the faster median counted (the stricter bound); a
  bare argon2-cffi verify of the same parameters is timed beside it, for the speed-up.
  "2 verifies at once" is measured in-process too, interleaved with verifies alone. The auth
  service's CPU during the run (its process tree) is split: its main thread is the event loop,
  the rest is the hashing (worker processes). `/health/live` is sampled by one keep-alive
  client every 10 ms during a second run of 64 logins, so that the probe's requests are not in
  the login figure.
  The logins floor: an auth service of its own (fresh database and Redis prefix) at m=8 KiB
  t=1, one warm-up, then 64 connections; the whole machine's busy CPU (/proc/stat) ÷ the
  logins is what a login costs beside its hash. Its ceiling is 1 ÷ (a verify beside another ÷
  one alone, the interleaved pair above, + that floor ÷ the bound's verify): what the logins
  row could reach if nothing but the concurrent hashes themselves cost more under load.
- Refresh: wrk with a Lua script reading a token list; sessions are created beforehand through
  the service's own store (`open_store(...).create`), a 1 s calibration run sizes the list, and
  every request rotates a token not presented before. Redis run: PostgreSQL users, a fresh
  `AUTH_REDIS_PREFIX`; SQL run: SQLite only.
- Gateway latency: wrk with 1 connection (back-to-back requests), p50 through the gateway minus
  p50 straight to the todo service.
- Gateway idle: the same gateway code in front of `tests/bench/stub_upstream.py` (BENCH ONLY,
  no framework, a fixed 4.5 KB answer), once answering at once and once after sleeping 1 ms
  (`?idle_us=1000`, no CPU spent): the first is what the gateway's own work adds, the second
  what the same work costs when the gateway's process waits between a request's two halves.
- Edge engine: nginx on `python -m gateway render-config`'s configuration (one worker, access
  log on, as the Python gateway logs too) and the Python gateway, each against the todo service
  called directly in one run: 1 connection for the added p50 (its own CPU is the servers' CPU a
  request through it less the todo service's alone), 32 connections for throughput ÷ direct.
- JWKS: the todo service's `token_verifier_jwks_fetches_total` by reason, before and after the
  run. Its background refresh (every 0.8 × the JWKS's max-age, 240 s by default) may fall in
  the window; it is shown but not counted, since the load does not cause it.
- wrk CPU is wrk's own user+system time (from `wait4`) ÷ the run's length, in cores: on 2 cores
  it is CPU the servers did not get.
- Verifier adapters: `tests/bench/adapters.py`, each app called as ASGI on one event loop in
  the bench process (no server, no socket), the same valid token every request (cache hit);
  process CPU per request, best of interleaved rounds; the ASGI middleware row is
  `token_verifier.asgi.BearerAuthMiddleware` in front of the bare FastAPI app.
- The peer is `tests/bench/peer/peer_app.py` (FastAPI + fastapi-users, JWT ES256, SQLAlchemy on
  PostgreSQL, Argon2id via pwdlib at the same parameters), one uvicorn process, from its own venv.
"""


def render(bench: Bench, wall_s: float, load: tuple[str, str], cleanup: list[str]) -> str:
    timing = bench.timing
    mode = "quick (BENCH_QUICK=1)" if timing.quick else "full"
    when = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    lines = [
        f"# Benchmark ({mode}), {when}",
        "",
        f"{CORES} cores; wrk runs {timing.wrk_s:.0f} s (warm-up {timing.warmup_s:.0f} s; A/B "
        f"pairs {timing.rounds} alternating rounds of {timing.pair_s:.0f} s), JWKS run "
        f"{timing.jwks_s:.0f} s; load average before {load[0]}, after {load[1]}; "
        f"wall time {wall_s:.0f} s. {_contention(bench)}",
        "",
        _machine_speed(bench),
        "",
        bench.report.markdown(),
        "",
        NOTES + betterauth_peer.NOTES,
    ]
    if cleanup:
        lines += ["", "Clean-up problems: " + "; ".join(cleanup)]
    return "\n".join(lines) + "\n"


def _contention(bench: Bench) -> str:
    if not bench.others_cores:
        return ""
    others = bench.others_cores
    return (
        f"Other work on the machine during the wrk runs (processes not the benchmark's, "
        f"PostgreSQL and Redis included): {sum(others) / len(others):.2f} cores on average, "
        f"{max(others):.2f} at most."
    )


# What DESIGN.md's "Baselines measured on this machine before any code" give for the two.
BASELINE_ARGON2_S = 0.016
BASELINE_OPENSSL_ES256_S = 42e-6


def _machine_speed(bench: Bench) -> str:
    """How fast this run's machine was against the one DESIGN.md's targets were set on: the
    rows in absolute units (per second, ms) move with it, the ratio rows do not."""
    argon2_s = bench.ours.get("argon2_verify_s")
    openssl_s = bench.ours.get("openssl_es256_s")
    if argon2_s is None or openssl_s is None:
        return "Machine speed: not measured in this run."
    return (
        f"Machine speed: one Argon2id verify took {argon2_s * 1000:.1f} ms here against "
        f"DESIGN.md's baseline of {BASELINE_ARGON2_S * 1000:.0f} ms "
        f"({argon2_s / BASELINE_ARGON2_S:.2f} ×), and one OpenSSL ES256 verify "
        f"{openssl_s * 1e6:.1f} µs against {BASELINE_OPENSSL_ES256_S * 1e6:.0f} µs "
        f"({openssl_s / BASELINE_OPENSSL_ES256_S:.2f} ×); transparent huge pages "
        f"{_transparent_huge_pages()} (README, Operations: on `always` a hash costs less). "
        f"The rows in absolute units (per "
        f"second, ms) move with the machine; the ratio rows do not. Verdicts are given on the "
        f"figures as measured, never scaled."
    )


def _transparent_huge_pages() -> str:
    """The host's THP mode, the bracketed word of the kernel's setting."""
    try:
        setting = Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text()
    except OSError:
        return "unknown"
    chosen = [word.strip("[]") for word in setting.split() if word.startswith("[")]
    return f"`{chosen[0]}`" if chosen else "unknown"


def _loadavg() -> str:
    return "/".join(f"{value:.2f}" for value in os.getloadavg())


def _interrupted(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> int:
    started = time.monotonic()
    load_before = _loadavg()
    timing = Timing.from_env()
    shutil.rmtree(WORKDIR, ignore_errors=True)
    WORKDIR.mkdir(parents=True)
    resources = Resources(WORKDIR)
    bench = Bench(rows.make_report(int(timing.jwks_s)), resources, timing, WORKDIR)
    signal.signal(signal.SIGTERM, _interrupted)
    cleanup: list[str] = []
    try:
        bench.guarded(
            "verifier micro-benchmarks",
            [rows.CACHE_HIT, rows.FIRST_ES256, rows.FIRST_ED25519, rows.FIRST_RS256],
            bench.verifier_micro,
        )
        bench.guarded("OpenSSL floor", [rows.OPENSSL_FLOOR], bench.openssl_floor)
        bench.guarded(
            "verifier adapters", [rows.VERIFIER_ADAPTERS], lambda: verifier_adapters(bench)
        )
        if not wrk.available():
            print(f"[bench] {wrk.INSTALL_HINT}", file=sys.stderr, flush=True)
            for key in WRK_ROWS:
                bench.report.not_measured(key, wrk.INSTALL_HINT)
        else:
            run_platform(bench)
            bench.guarded("logins floor", [rows.LOGIN_FLOOR], bench.login_floor)
            bench.guarded("refresh (SQL store)", [rows.REFRESH_SQL], bench.refresh_sql)
            bench.guarded("peer", [rows.PEER_LOGIN, rows.PEER_LIST], lambda: peer(bench))
            bench.guarded(
                "betterauth peer",
                betterauth_peer.ROWS,
                lambda: betterauth_peer.better_auth(bench),
            )
    except KeyboardInterrupt:
        print("[bench] interrupted; cleaning up", file=sys.stderr, flush=True)
        for key in bench.report.rows:
            bench.report.not_measured(key, "interrupted")
    finally:
        cleanup = resources.close()
    text = render(bench, time.monotonic() - started, (load_before, _loadavg()), cleanup)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(text)
    print()
    print(text)
    print(f"(written to {OUTPUT.relative_to(ROOT)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
