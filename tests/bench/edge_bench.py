"""The edges against the todo service called directly, in one run: nginx on the configuration
`python -m gateway render-config` writes (the production edge) and the Python gateway (the
`make run` edge). For each, the p50 it adds on one connection with the CPU it spends a request,
and the throughput through it ÷ direct at 32 connections; each an alternating A/B pair."""

from __future__ import annotations

import statistics

from gateway.config import Settings
from gateway.edge_engine.nginx_process import (
    INSTALL_HINT,
    local_user,
    nginx_binary,
    nginx_command,
    write_config,
)
from tests.bench import rows, wrk
from tests.bench.measure import Bench, Pair, _own_cpu, cpu_of, errors_of, server_cpu_of
from tests.bench.procs import Resources, Service
from tests.bench.stack import Platform, check_list
from tests.infra import free_port

# One worker: one process, as the Python gateway is measured (both share 2 cores with the todo
# service, PostgreSQL and wrk).
NGINX_WORKERS = "1"


def start_nginx(resources: Resources, name: str, auth: Service, todo: Service) -> Service:
    binary = nginx_binary()
    if binary is None:
        raise RuntimeError(INSTALL_HINT)
    port = free_port()
    workdir = resources.workdir / name
    settings = Settings(auth_urls=(auth.url,), todo_urls=(todo.url,), port=port)
    config = write_config(settings, workdir / "nginx", workers=NGINX_WORKERS, user=local_user())
    nginx = Service("gateway", {}, workdir, port=port, name=name)
    nginx.argv = nginx_command(binary, config)
    return resources.start(nginx)


def _added(latency: Pair) -> tuple[float, str]:
    added = [b.p50_ms - a.p50_ms for a, b in latency.rounds]
    return statistics.median(added), "/".join(f"{a:+.3f}" for a in added)


def _measured(latency: Pair, throughput: Pair) -> str:
    added, rounds = _added(latency)
    direct, through = latency.first, latency.second
    t_direct, t_through = throughput.first, throughput.second
    return (
        f"{added:+.3f} ms p50 on 1 connection (median of {len(latency.rounds)} alternating "
        f"rounds: {rounds}; through {through.p50_ms:.3f} vs direct {direct.p50_ms:.3f} ms), "
        f"its own CPU ≈ {_own_cpu(through, direct)} µs/request; throughput at 32 connections "
        f"{throughput.ratio():.3f} of direct ({throughput.describe_ratios()}; fastest runs "
        f"{t_through.ok_rps:,.0f} vs {t_direct.ok_rps:,.0f} req/s, "
        f"{server_cpu_of(t_through, t_direct)}; {cpu_of(t_through, t_direct)})"
        + errors_of(*latency.runs(), *throughput.runs())
    )


def _own_share(bench: Bench, platform: Platform) -> str:
    """nginx in front of tests/bench/stub_upstream.py, which answers at once: with an upstream
    this quick, other work on the machine moves the direct p50 far less than the todo service's,
    so nginx's own share shows through the noise."""
    stub = bench.resources.stub_upstream("edge-stub")
    nginx = start_nginx(bench.resources, "edge-nginx-stub", platform.auth, stub)
    try:
        path = "/api/stub"
        runs = bench.pair(
            (stub.url + path, [stub]),
            (nginx.url + path, [nginx, stub]),
            wrk.get_script({}),
            threads=1,
            connections=1,
        )
    finally:
        nginx.stop()
        stub.stop()
    added, rounds = _added(runs)
    return (
        f"in front of a stub upstream that answers at once: {added:+.3f} ms p50 ({rounds}; "
        f"direct {runs.first.p50_ms:.3f} ms), its own CPU ≈ {_own_cpu(runs.second, runs.first)} "
        f"µs/request" + errors_of(*runs.runs())
    )


def edge_engine(bench: Bench, platform: Platform) -> None:
    own_share = _own_share(bench, platform)
    nginx = start_nginx(bench.resources, "edge-nginx", platform.auth, platform.todo_on)
    try:
        token = platform.fresh_token()
        script = wrk.get_script({"Authorization": f"Bearer {token}"})
        path = platform.tasks_path
        check_list(nginx.url + path, token)
        direct = (platform.todo_on.url + path, [platform.todo_on])
        pairs: dict[str, tuple[Pair, Pair]] = {}
        for name, edge in (("nginx", nginx), ("python", platform.gateway_on)):
            through = (edge.url + path, [edge, platform.todo_on])
            latency = bench.pair(direct, through, script, threads=1, connections=1)
            throughput = bench.pair(direct, through, script)
            pairs[name] = (latency, throughput)
    finally:
        nginx.stop()
    latency, throughput = pairs["nginx"]
    added, _ = _added(latency)
    faults = latency.faults() or throughput.faults()
    bench.report.judge(
        rows.EDGE_LATENCY,
        measured=f"{_measured(latency, throughput)}; {own_share}",
        ratio=f"{added:+.3f} ms",
        ok=added <= 0.2 and not faults,
    )
    bench.report.judge(
        rows.EDGE_THROUGHPUT,
        measured="the same run as the row above",
        ratio=f"{throughput.ratio():.3f}",
        ok=throughput.ratio() >= 0.90 and not faults,
    )
    latency, throughput = pairs["python"]
    added, _ = _added(latency)
    bench.report.info(
        rows.EDGE_PYTHON,
        measured=_measured(latency, throughput),
        ratio=f"{added:+.3f} ms; {throughput.ratio():.3f} of direct",
    )
