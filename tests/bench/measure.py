"""The measurements: each fills its rows of the report, or they say why they were not measured."""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.bench import micro, oauth, rows, wrk
from tests.bench.cpu import CpuSnapshot
from tests.bench.procs import PASSWORD, Resources, Service, register
from tests.bench.report import Report, n
from tests.bench.stack import (
    HealthProbe,
    Platform,
    check_list,
    create_sessions,
    jwks_fetch_counts,
    percentile,
    start_platform,
    wait_hash_queue_empty,
)
from tests.infra import REDIS_URL

CORES = os.cpu_count() or 1
LOGIN_CONNECTIONS = 64


@dataclass(frozen=True)
class Timing:
    quick: bool
    wrk_s: float
    warmup_s: float
    jwks_s: float
    rounds: int  # rounds of an A/B comparison, each one run of either variant
    pair_s: float  # the length of each run of an A/B comparison
    only: tuple[str, ...] = ()  # BENCH_ONLY: run only the steps whose name holds one of these

    @classmethod
    def from_env(cls) -> Timing:
        only = tuple(w.strip() for w in os.environ.get("BENCH_ONLY", "").split(",") if w.strip())
        if os.environ.get("BENCH_QUICK", "") not in ("", "0"):
            return cls(quick=True, wrk_s=3, warmup_s=1, jwks_s=15, rounds=2, pair_s=3, only=only)
        return cls(quick=False, wrk_s=10, warmup_s=2, jwks_s=60, rounds=4, pair_s=5, only=only)

    def selects(self, step: str) -> bool:
        return not self.only or any(word.lower() in step.lower() for word in self.only)


def errors_of(*results: wrk.WrkResult) -> str:
    notes = [r.faults() for r in results if r.faults()]
    return f"; errors: {', '.join(notes)}" if notes else ""


def server_cpu_of(*results: wrk.WrkResult) -> str:
    """Server CPU per request, the figure least moved by other work on the machine."""
    figures = [r.server_us_per_request for r in results]
    if any(f is None for f in figures):
        return "server CPU not measured"
    return "server CPU " + "/".join(f"{f:,.0f}" for f in figures if f is not None) + " µs/request"


def _own_cpu(through: wrk.WrkResult, direct: wrk.WrkResult) -> str:
    """The gateway's CPU a request: the servers' through it, less the upstream's alone."""
    if not through.server_us_per_request or not direct.server_us_per_request:
        return "(not measured)"
    return f"{through.server_us_per_request - direct.server_us_per_request:,.0f}"


def cpu_of(*results: wrk.WrkResult) -> str:
    """wrk's own CPU and the CPU other work took meanwhile, per run, in cores."""
    wrk_cpu = "/".join(f"{r.cpu_cores:.2f}" for r in results)
    others = "/".join(f"{r.others_cores:.2f}" for r in results if r.others_cores is not None)
    return f"wrk CPU {wrk_cpu}, others' CPU {others} cores"


@dataclass(frozen=True)
class Pair:
    """The rounds of an A/B comparison: (first, second) runs, back to back in each round."""

    rounds: list[tuple[wrk.WrkResult, wrk.WrkResult]]

    @property
    def first(self) -> wrk.WrkResult:
        """The first variant's fastest run, for the figures a row describes."""
        return max((a for a, _ in self.rounds), key=lambda r: r.ok_rps)

    @property
    def second(self) -> wrk.WrkResult:
        return max((b for _, b in self.rounds), key=lambda r: r.ok_rps)

    def ratios(self) -> list[float]:
        """second ÷ first throughput, one per round."""
        return [b.ok_rps / a.ok_rps if a.ok_rps else 0.0 for a, b in self.rounds]

    def ratio(self) -> float:
        return statistics.median(self.ratios())

    def runs(self) -> list[wrk.WrkResult]:
        """Every run of both variants, for the errors a row reports."""
        return [run for pair in self.rounds for run in pair]

    def faults(self) -> bool:
        return any(run.faults() for run in self.runs())

    def describe_ratios(self) -> str:
        spread = "/".join(f"{r:.3f}" for r in self.ratios())
        return f"median of {len(self.rounds)} alternating rounds ({spread})"


@dataclass
class Bench:
    report: Report
    resources: Resources
    timing: Timing
    workdir: Path
    # Our figures the peer comparison needs.
    ours: dict[str, float] = field(default_factory=dict)
    # Cores busy with other work during each wrk run, for the header.
    others_cores: list[float] = field(default_factory=list)

    def guarded(
        self, name: str, keys: list[str], measurement: Callable[[], None], *, always: bool = False
    ) -> None:
        """Run one measurement; any failure marks its unfilled rows as not measured."""
        if not always and not self.timing.selects(name):
            for key in keys:
                self.report.not_measured(key, "not selected (BENCH_ONLY)")
            return
        print(f"[bench] {name} …", flush=True)
        started = time.monotonic()
        try:
            measurement()
        except Exception as error:
            reason = f"{type(error).__name__}: {error}"
            print(f"[bench] {name} failed: {reason}", flush=True)
            for key in keys:
                self.report.not_measured(key, reason)
        print(f"[bench] {name}: {time.monotonic() - started:.0f} s", flush=True)

    def run_wrk(
        self,
        url: str,
        script: str,
        *,
        servers: Sequence[Service] = (),
        seconds: float | None = None,
        threads: int = 2,
        connections: int = 32,
        script_args: tuple[str, ...] = (),
    ) -> wrk.WrkResult:
        """One wrk run, with the CPU that `servers` and other work used meanwhile."""
        before, server_before = CpuSnapshot.take(), sum(s.cpu_s() for s in servers)
        result = wrk.run(
            url,
            script,
            workdir=self.workdir / "wrk",
            duration_s=seconds or self.timing.wrk_s,
            threads=threads,
            connections=connections,
            script_args=script_args,
        )
        server_cpu = sum(s.cpu_s() for s in servers) - server_before
        others = CpuSnapshot.take().others_cores_since(before)
        self.others_cores.append(others)
        return dataclasses.replace(
            result, others_cores=others, server_cpu_s=server_cpu if servers else None
        )

    def loaded(
        self,
        url: str,
        script: str,
        *,
        servers: Sequence[Service] = (),
        threads: int = 2,
        connections: int = 32,
    ) -> wrk.WrkResult:
        """A warm-up run, then the measured one."""
        self.run_wrk(
            url, script, seconds=self.timing.warmup_s, threads=threads, connections=connections
        )
        return self.run_wrk(url, script, servers=servers, threads=threads, connections=connections)

    def pair(
        self,
        first: tuple[str, Sequence[Service]],
        second: tuple[str, Sequence[Service]],
        script: str,
        *,
        threads: int = 2,
        connections: int = 32,
    ) -> Pair:
        """Two variants (url, servers) after a warm-up of each, then `timing.rounds` rounds of
        one run of each, the order turned round every round (AB BA AB …) so that a drift of the
        machine hits both alike. Each round gives a ratio of its two back-to-back runs; the
        median of those judges, so one burst of other work during one run does not decide it."""
        for url, _ in (first, second):
            self.run_wrk(
                url,
                script,
                seconds=self.timing.warmup_s,
                threads=threads,
                connections=connections,
            )
        rounds: list[tuple[wrk.WrkResult, wrk.WrkResult]] = []
        for number in range(self.timing.rounds):
            order = (first, second) if number % 2 == 0 else (second, first)
            runs = {
                url: self.run_wrk(
                    url,
                    script,
                    servers=servers,
                    seconds=self.timing.pair_s,
                    threads=threads,
                    connections=connections,
                )
                for url, servers in order
            }
            rounds.append((runs[first[0]], runs[second[0]]))
        return Pair(rounds)

    # --- 2. verifier micro-benchmarks (in-process) --------------------------------------------

    def verifier_micro(self) -> None:
        count = 300 if self.timing.quick else 1000
        hit = micro.cache_hit_s()
        self.report.judge(
            rows.CACHE_HIT,
            measured=f"{hit * 1e6:.2f} µs per verify (in-process CPU time, best of 7 × 50,000)",
            ratio=f"{hit * 1e6:.2f} µs",
            ok=hit <= 5e-6,
        )
        es = micro.first_verification("ES256", count)
        self.ours["es256_joserfc_s"] = es.joserfc_s
        self.ours["es256_ours_s"] = es.ours_s
        self.report.judge(
            rows.FIRST_ES256,
            measured=f"ours {es.ours_s * 1e6:.1f} µs vs bare joserfc {es.joserfc_s * 1e6:.1f} µs "
            f"({count} distinct tokens, fresh verifier, CPU time, best of 5)",
            ratio=f"{es.ratio:.2f} ×",
            ok=es.ratio <= 1.3,
        )
        for key, alg in ((rows.FIRST_ED25519, "Ed25519"), (rows.FIRST_RS256, "RS256")):
            other = micro.first_verification(alg, count)
            self.report.info(
                key,
                measured=f"ours {other.ours_s * 1e6:.1f} µs vs bare joserfc "
                f"{other.joserfc_s * 1e6:.1f} µs",
                ratio=f"{other.ratio:.2f} ×",
            )

    def openssl_floor(self) -> None:
        floor = micro.openssl_ecdsap256_verify_s(2)
        self.ours["openssl_es256_s"] = floor
        self.ours.setdefault("argon2_verify_s", micro.argon2_verify_s(samples=10))
        joserfc_s, ours_s = self.ours.get("es256_joserfc_s"), self.ours.get("es256_ours_s")
        measured = f"{floor * 1e6:.1f} µs per verify ({1 / floor:,.0f}/s)"
        if joserfc_s is None or ours_s is None:
            self.report.info(rows.OPENSSL_FLOOR, measured=measured, ratio="—")
            return
        self.report.info(
            rows.OPENSSL_FLOOR,
            measured=f"{measured}; joserfc {joserfc_s * 1e6:.1f} µs, ours {ours_s * 1e6:.1f} µs",
            ratio=f"joserfc {joserfc_s / floor:.2f} ×, ours {ours_s / floor:.2f} × the floor",
        )

    # --- on the platform ----------------------------------------------------------------------

    def auth_overhead(self, platform: Platform) -> None:
        """1. The protected list with a valid token (cache hit after the first request) against
        the auth-off twin, directly and through the gateway; each pair run back to back."""
        token = platform.fresh_token()
        script = wrk.get_script({"Authorization": f"Bearer {token}"})
        path = platform.tasks_path
        on_todo, off_todo = platform.todo_on, platform.todo_off
        pairs = (
            (rows.THROUGHPUT_DIRECT, on_todo, off_todo, [on_todo], [off_todo]),
            (
                rows.THROUGHPUT_GATEWAY,
                platform.gateway_on,
                platform.gateway_off,
                [platform.gateway_on, on_todo],
                [platform.gateway_off, off_todo],
            ),
        )
        for key, on_entry, off_entry, on_servers, off_servers in pairs:
            check_list(on_entry.url + path, token)
            check_list(off_entry.url + path, token)
            runs = self.pair(
                (off_entry.url + path, off_servers), (on_entry.url + path, on_servers), script
            )
            off, on = runs.first, runs.second
            if key == rows.THROUGHPUT_DIRECT:
                self.ours["list_rps"] = on.ok_rps
                self.ours["list_us"] = on.server_us_per_request or 0.0
            ratio = runs.ratio()
            on_us, off_us = on.server_us_per_request, off.server_us_per_request
            by_cpu = f"; by server CPU {off_us / on_us:.3f}" if on_us and off_us else ""
            self.report.judge(
                key,
                measured=f"{runs.describe_ratios()}; fastest runs {n(on.ok_rps)} vs "
                f"{n(off.ok_rps)} req/s (p99 {on.p99_ms:.1f} vs {off.p99_ms:.1f} ms; "
                f"{server_cpu_of(on, off)}{by_cpu}; {cpu_of(on, off)})" + errors_of(*runs.runs()),
                ratio=f"{ratio:.3f}",
                ok=ratio >= 0.90 and not runs.faults(),
            )

    def gateway_latency(self, platform: Platform) -> None:
        """5. One connection, back-to-back requests: the latency each hop adds, not queueing."""
        token = platform.fresh_token()
        script = wrk.get_script({"Authorization": f"Bearer {token}"})
        path = platform.tasks_path
        runs = self.pair(
            (platform.todo_on.url + path, [platform.todo_on]),
            (platform.gateway_on.url + path, [platform.gateway_on, platform.todo_on]),
            script,
            threads=1,
            connections=1,
        )
        # Each round's added p50, back to back; the median judges.
        added = [b.p50_ms - a.p50_ms for a, b in runs.rounds]
        direct, through = runs.first, runs.second
        added_p50 = statistics.median(added)
        added_p99 = through.p99_ms - direct.p99_ms
        own = f"; the gateway's own CPU ≈ {_own_cpu(through, direct)} µs/request"
        self.report.judge(
            rows.GATEWAY_LATENCY,
            measured=f"+{added_p50:.2f} ms p50 (median of {len(added)} alternating rounds: "
            f"{'/'.join(f'{a:+.2f}' for a in added)}), +{added_p99:.2f} ms p99 of the fastest "
            f"runs{own} (gateway "
            f"{through.p50_ms:.2f}/{through.p99_ms:.2f} ms vs direct "
            f"{direct.p50_ms:.2f}/{direct.p99_ms:.2f} ms, "
            f"wrk 1 connection; {server_cpu_of(through, direct)}; {cpu_of(through, direct)})"
            + errors_of(*runs.runs()),
            ratio=f"+{added_p50:.2f} ms",
            ok=added_p50 <= 1.0 and not runs.faults(),
        )

    def gateway_idle(self, platform: Platform) -> None:
        """5b. The same code and the same work in the gateway, in front of an upstream that
        answers at once and one that first sleeps: what the gateway itself adds, and how much
        more it costs when its process waits between a request's two halves."""
        stub = self.resources.stub_upstream("stub-upstream")
        gateway = self.resources.gateway("gateway-stub", platform.auth, stub)
        try:
            figures = []
            for idle_us in (0, 1000):
                path = f"/api/stub?idle_us={idle_us}"
                runs = self.pair(
                    (stub.url + path, [stub]),
                    (gateway.url + path, [gateway, stub]),
                    wrk.get_script({}),
                    threads=1,
                    connections=1,
                )
                added = statistics.median(b.p50_ms - a.p50_ms for a, b in runs.rounds)
                own = _own_cpu(runs.second, runs.first)
                figures.append((idle_us, added, own, runs))
        finally:
            gateway.stop()
            stub.stop()
        self.report.info(
            rows.GATEWAY_IDLE,
            measured="; ".join(
                f"upstream idle {idle_us / 1000:g} ms: +{added:.2f} ms p50 (median of "
                f"{len(runs.rounds)} alternating rounds, direct p50 {runs.first.p50_ms:.2f} ms), "
                f"the gateway's own CPU ≈ {own} µs/request"
                for idle_us, added, own, runs in figures
            )
            + " (wrk 1 connection)"
            + errors_of(*(run for *_, runs in figures for run in runs.runs())),
            ratio=" / ".join(f"+{added:.2f} ms" for _, added, _, _ in figures),
        )

    def asgi_servers(self, platform: Platform) -> None:
        """7. The same todo app and database under granian; uvicorn run again back to back."""
        granian = self.resources.todo(
            "todo-granian",
            {**platform.todo_env, "ASGI_SERVER": "granian"},
        )
        try:
            token = platform.fresh_token()
            script = wrk.get_script({"Authorization": f"Bearer {token}"})
            path = platform.tasks_path
            check_list(granian.url + path, token)
            runs = self.pair(
                (platform.todo_on.url + path, [platform.todo_on]),
                (granian.url + path, [granian]),
                script,
            )
        finally:
            granian.stop()
        uvicorn, on_granian = runs.first, runs.second
        self.report.info(
            rows.ASGI,
            measured=f"granian {n(on_granian.ok_rps)} vs uvicorn {n(uvicorn.ok_rps)} req/s "
            f"(p99 {on_granian.p99_ms:.1f} vs {uvicorn.p99_ms:.1f} ms; "
            f"{server_cpu_of(on_granian, uvicorn)}; {cpu_of(on_granian, uvicorn)})"
            + errors_of(*runs.runs()),
            ratio=f"granian ÷ uvicorn {runs.ratio():.2f} ({runs.describe_ratios()})",
        )

    def logins(self, platform: Platform) -> None:
        """3. Logins at saturation (64 connections) against the Argon2 bound; then, once the
        abandoned logins have drained, a second run of 64 with /health/live sampled every
        10 ms (the probe's own requests are load that is not logins, so they stay out of the
        first run). One verify's time is measured just before and just after the first run
        (30 each) and the faster median sets the bound: a single short sample moved it by a
        quarter between runs on this machine, and the faster one is the stricter bound."""
        verify_before = micro.argon2_verify_s(samples=30)
        body = json.dumps({"email": platform.account.email, "password": PASSWORD})
        script = wrk.post_script(body, "application/json")
        url = f"{platform.auth.url}/auth/login"
        loop_before, machine_before = platform.auth.main_thread_cpu_s(), CpuSnapshot.take()
        result = self.run_wrk(url, script, servers=[platform.auth], connections=LOGIN_CONNECTIONS)
        machine_s = CpuSnapshot.take().busy_s_since(machine_before)
        loop_s = platform.auth.main_thread_cpu_s() - loop_before
        wait_hash_queue_empty(platform.auth.url)
        verify_after = micro.argon2_verify_s(samples=30)
        probe = HealthProbe(platform.auth.url, start_after=1.0, run_for=self.timing.wrk_s - 1.5)
        probe.start()
        try:
            probed = self.run_wrk(
                url, script, servers=[platform.auth], connections=LOGIN_CONNECTIONS
            )
        finally:
            probe.stop()
        wait_hash_queue_empty(platform.auth.url)
        self.ours["login_rps"] = result.ok_rps
        one_verify = min(verify_before, verify_after)
        self.ours["argon2_verify_s"] = one_verify
        bound = CORES / one_verify
        contention = micro.argon2_contention(CORES)
        cffi_verify = micro.argon2_verify_s(samples=15, library="argon2-cffi")
        ratio = result.ok_rps / bound
        # What the bound would be on the CPU that other work left us, for reading the figure.
        left = max(0.1, CORES - (result.others_cores or 0.0) - result.cpu_cores)
        # Where a login's CPU went: the hashing workers and the event loop, each per login.
        logins = max(1, result.requests - result.non_2xx)
        hashing_ms = ((result.server_cpu_s or 0.0) - loop_s) / logins * 1000
        loop_ms = loop_s / logins * 1000
        machine_ms = machine_s / logins * 1000
        self.ours.update(
            argon2_together_s=contention.together_s,
            argon2_alone_s=contention.alone_s,
            login_machine_ms=machine_ms,
            login_hashing_ms=hashing_ms,
        )
        self.report.judge(
            rows.LOGINS,
            measured=f"{result.ok_rps:.1f} logins/s, p50 {result.p50_ms:.0f} ms, p99 "
            f"{result.p99_ms:.0f} ms at {LOGIN_CONNECTIONS} connections; bound {bound:.1f}/s "
            f"({CORES} cores ÷ {one_verify * 1000:.1f} ms CPU per verify, m=19456 t=2 p=1, the "
            f"faster of {verify_before * 1000:.1f} before and {verify_after * 1000:.1f} after, "
            f"as the service hashes (libsodium); a bare argon2-cffi verify "
            f"{cffi_verify * 1000:.1f} ms, a bound of {CORES / cffi_verify:.1f}/s; on "
            f"the {left:.2f} cores other work left, {left / one_verify:.1f}/s; {CORES} verifies "
            f"at once cost {contention.together_s * 1000:.1f} ms CPU each against "
            f"{contention.alone_s * 1000:.1f} ms alone, interleaved: a ceiling of "
            f"{contention.ceiling:.2f} of the bound; per login the hashing workers used "
            f"{hashing_ms:.1f} ms CPU and the event loop {loop_ms:.1f} ms, the whole machine "
            f"{machine_ms:.1f} ms; "
            f"{server_cpu_of(result)}; {cpu_of(result)})" + errors_of(result),
            ratio=f"{ratio:.2f}",
            ok=ratio >= 0.85 and not result.faults(),
        )
        if not probe.latencies_ms:
            raise RuntimeError(f"health probe got no answer ({probe.failures} failures)")
        p99 = percentile(probe.latencies_ms, 99)
        self.report.judge(
            rows.STALL,
            measured=f"p99 {p99:.1f} ms, p50 {percentile(probe.latencies_ms, 50):.1f} ms, max "
            f"{max(probe.latencies_ms):.1f} ms over {len(probe.latencies_ms)} probes, during "
            f"{probed.ok_rps:.1f} logins/s at {LOGIN_CONNECTIONS} connections"
            + (f", {probe.failures} failed" if probe.failures else "")
            + errors_of(probed),
            ratio=f"{p99:.1f} ms",
            ok=p99 <= 20 and not probe.failures and not probed.faults(),
        )

    def login_floor(self) -> None:
        """3b. What a login costs the machine beside its hash: the same 64-connection login
        run on an auth service of its own whose Argon2 costs next to nothing (m=8 KiB, t=1),
        the machine's busy CPU divided by the logins. With the real run's hash (two at once)
        it gives the most the logins row could reach on this machine and stack:
        1 ÷ (a verify beside another ÷ one alone + the rest ÷ the bound's verify), the first
        ratio from the interleaved pair (one phase of the machine), since the machine's speed
        moves between measurements. At this login rate the fixed costs per wake-up are shared
        by more requests than at the real rate, so the ceiling errs high, never low. It runs
        once the platform is stopped: beside it, its own database pool would take PostgreSQL
        past `max_connections` (503s, seen in a full run)."""
        if "argon2_verify_s" not in self.ours:
            raise RuntimeError("needs the logins step's verify figures (BENCH_ONLY=logins)")
        resources = self.resources
        auth = resources.auth(
            "auth-floor",
            {
                "AUTH_DATABASE_URL": resources.database("authfloor"),
                "AUTH_REDIS_URL": REDIS_URL,
                "AUTH_REDIS_PREFIX": resources.redis_prefix("authfloor"),
                "AUTH_HASH_QUEUE": "64",
                "AUTH_ARGON2_MEMORY_KIB": "8",
                "AUTH_ARGON2_TIME_COST": "1",
            },
        )
        try:
            account = register(auth.url, "floor")
            body = json.dumps({"email": account.email, "password": PASSWORD})
            script = wrk.post_script(body, "application/json")
            url = f"{auth.url}/auth/login"
            self.run_wrk(url, script, seconds=self.timing.warmup_s, connections=LOGIN_CONNECTIONS)
            loop_before, machine_before = auth.main_thread_cpu_s(), CpuSnapshot.take()
            result = self.run_wrk(url, script, servers=[auth], connections=LOGIN_CONNECTIONS)
            machine_s = CpuSnapshot.take().busy_s_since(machine_before)
            loop_s = auth.main_thread_cpu_s() - loop_before
        finally:
            auth.stop()
        logins = max(1, result.requests - result.non_2xx - result.errors)
        per = 1000 / logins
        machine_ms, auth_ms = machine_s * per, (result.server_cpu_s or 0.0) * per
        wrk_ms, loop_ms = result.cpu_s * per, loop_s * per
        verify_ms = self.ours["argon2_verify_s"] * 1000
        together_ms = self.ours["argon2_together_s"] * 1000
        alone_ms = self.ours["argon2_alone_s"] * 1000
        ceiling = 1 / (together_ms / alone_ms + machine_ms / verify_ms)
        beside = self.ours["login_machine_ms"] - self.ours["login_hashing_ms"]
        self.report.info(
            rows.LOGIN_FLOOR,
            measured=f"{result.ok_rps:.0f} logins/s at m=8 KiB t=1, {LOGIN_CONNECTIONS} "
            f"connections: the machine's CPU {machine_ms:.2f} ms a login (the auth process "
            f"{auth_ms:.2f}, its event loop {loop_ms:.2f}; wrk {wrk_ms:.2f}; PostgreSQL, "
            f"Redis, the kernel and other work {machine_ms - auth_ms - wrk_ms:.2f}; the trivial "
            f"hash a few µs). With the logins row's figures (a verify beside another "
            f"{together_ms:.1f} ms against {alone_ms:.1f} alone, interleaved; the bound's verify "
            f"{verify_ms:.1f} ms): a ceiling of 1 ÷ ({together_ms / alone_ms:.3f} + "
            f"{machine_ms / verify_ms:.3f}) = {ceiling:.2f} of the bound. In that row's run the "
            f"machine spent {beside:.1f} ms a login beside the hashing workers" + errors_of(result),
            ratio=f"ceiling {ceiling:.2f}",
        )

    def rotations(
        self,
        auth: Service,
        *,
        database_url: str,
        redis_url: str | None,
        prefix: str,
        user_id: str,
    ) -> tuple[wrk.WrkResult, int]:
        """4. Every request rotates a token never presented before. Sessions are made straight
        through the service's own store; a 1 s calibration run sizes the token list."""

        def token_file(count: int, name: str) -> Path:
            tokens = create_sessions(database_url, redis_url, prefix, user_id, count)
            path = self.workdir / f"{name}.tokens"
            path.write_text("\n".join(tokens) + "\n")
            return path

        args = ("2",)  # the script's thread count
        calibration = token_file(2500, "calibration")
        trial = self.run_wrk(auth.url, wrk.refresh_script(calibration), seconds=1, script_args=args)
        rate = max(trial.ok_rps, 300.0)
        count = int(rate * self.timing.wrk_s * 1.6) + 2000
        tokens = token_file(count, "rotation")
        result = self.run_wrk(
            auth.url, wrk.refresh_script(tokens), servers=[auth], script_args=args
        )
        return result, count

    def refresh_redis(self, platform: Platform) -> None:
        result, count = self.rotations(
            platform.auth,
            database_url=platform.auth_database,
            redis_url=REDIS_URL,
            prefix=platform.auth_redis_prefix,
            user_id=platform.account.user_id,
        )
        self.ours["refresh_rps"] = result.ok_rps
        self.report.judge(
            rows.REFRESH_REDIS,
            measured=_rotation_text(result, count),
            ratio=f"{result.ok_rps / 1500:.2f} of 1,500/s; p99 {result.p99_ms:.1f} ms",
            ok=result.ok_rps >= 1500 and result.p99_ms <= 25 and not result.faults(),
        )

    def refresh_sql(self) -> None:
        database = f"sqlite+aiosqlite:///{self.workdir / 'auth-sqlite' / 'auth.db'}"
        auth = self.resources.auth("auth-sqlite", {"AUTH_DATABASE_URL": database})
        try:
            from tests.bench.procs import register

            account = register(auth.url, "bench-sql")
            result, count = self.rotations(
                auth, database_url=database, redis_url=None, prefix="", user_id=account.user_id
            )
        finally:
            auth.stop()
        self.report.info(
            rows.REFRESH_SQL,
            measured=_rotation_text(result, count),
            ratio=f"{result.ok_rps / 1500:.2f} of 1,500/s; p99 {result.p99_ms:.1f} ms",
        )

    def jwks_fetches(self, platform: Platform) -> None:
        """6. A long load run on the todo service with no key change: no JWKS fetch at all."""
        token = platform.fresh_token()
        script = wrk.get_script({"Authorization": f"Bearer {token}"})
        before = jwks_fetch_counts(platform.todo_on.url)
        result = self.run_wrk(
            platform.todo_on.url + platform.tasks_path, script, seconds=self.timing.jwks_s
        )
        after = jwks_fetch_counts(platform.todo_on.url)
        fetched = {
            reason: after[reason] - before.get(reason, 0.0)
            for reason in after
            if after[reason] - before.get(reason, 0.0) > 0
        }
        total = sum(fetched.values())
        # The background refresh the JWKS's Cache-Control asks for (every 0.8 × max-age) is
        # not caused by the load; anything else (an unknown kid, a restart) would be.
        caused = total - fetched.get("scheduled", 0.0)
        reasons = ", ".join(f"{count:.0f} {reason}" for reason, count in fetched.items())
        self.report.judge(
            rows.JWKS,
            measured=f"{total:.0f} fetches{f' ({reasons})' if reasons else ''} during "
            f"{self.timing.jwks_s:.0f} s at {n(result.ok_rps)} req/s ({n(result.requests)} "
            f"requests; token_verifier_jwks_fetches_total by reason, before/after; "
            f"{cpu_of(result)})" + errors_of(result),
            ratio=f"{caused:.0f} not scheduled"
            + (
                f" (+{fetched['scheduled']:.0f} scheduled max-age refresh)"
                if "scheduled" in fetched
                else ""
            ),
            ok=caused == 0 and not result.faults(),
        )


def _rotation_text(result: wrk.WrkResult, count: int) -> str:
    exhausted = (
        f"; token list of {n(count)} ran out, rate is a lower bound"
        if result.requests > count
        else ""
    )
    return (
        f"{n(result.ok_rps)} rotations/s, p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms "
        f"(wrk + Lua token list, 32 connections, each token used once; "
        f"{server_cpu_of(result)}; {cpu_of(result)})" + errors_of(result) + exhausted
    )


def run_platform(bench: Bench) -> None:
    """Everything measured on the platform, which is stopped afterwards."""
    from tests.bench.edge_bench import edge_engine

    steps: list[tuple[str, list[str], Callable[[Platform], None]]] = [
        ("auth on vs off", [rows.THROUGHPUT_DIRECT, rows.THROUGHPUT_GATEWAY], bench.auth_overhead),
        ("gateway latency", [rows.GATEWAY_LATENCY], bench.gateway_latency),
        ("gateway idle", [rows.GATEWAY_IDLE], bench.gateway_idle),
        (
            "edge engine",
            [rows.EDGE_LATENCY, rows.EDGE_THROUGHPUT, rows.EDGE_PYTHON],
            lambda platform: edge_engine(bench, platform),
        ),
        ("ASGI servers", [rows.ASGI], bench.asgi_servers),
        ("JWKS fetches", [rows.JWKS], bench.jwks_fetches),
        ("logins", [rows.LOGINS, rows.STALL], bench.logins),
        ("refresh (Redis)", [rows.REFRESH_REDIS], bench.refresh_redis),
        (
            "oauth client credentials",
            [rows.CLIENT_CREDENTIALS],
            lambda platform: oauth.client_credentials(bench, platform),
        ),
        (
            "oauth introspection",
            [rows.INTROSPECTION],
            lambda platform: oauth.introspection(bench, platform),
        ),
    ]
    wanted = [step for step in steps if bench.timing.selects(step[0])]
    for name, keys, _ in steps:
        if not bench.timing.selects(name):
            bench.guarded(name, keys, lambda: None)  # marks the rows "not selected"
    if not wanted:
        return
    started: list[Platform] = []
    platform_rows = [key for _, keys, _ in wanted for key in keys]
    bench.guarded(
        "start the platform",
        platform_rows,
        lambda: started.append(start_platform(bench.resources)),
        always=True,
    )
    if not started:
        return
    platform = started[0]
    try:
        for name, keys, step in wanted:
            bench.guarded(name, keys, lambda step=step: step(platform))  # type: ignore[misc]
    finally:
        platform.stop()
