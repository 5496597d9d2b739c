"""Health probes and Prometheus metrics, the same routes on every service."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import structlog
from litestar import Request, Response, get
from litestar.handlers import HTTPRouteHandler
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest

from kit.problems import problem_response

# A check raises when its dependency is not usable (503); it may instead return a warning for
# a dependency that is degraded but still lets the service do its work (said in the 200).
ReadinessCheck = Callable[[], Awaitable[str | None]]
CHECK_TIMEOUT_S = 2.0
log = structlog.get_logger("health")

HTTP_REQUESTS = Counter(
    "http_requests_total", "HTTP requests answered", ["service", "method", "status"]
)
HTTP_LATENCY = Histogram(
    "http_request_duration_seconds",
    "HTTP request latency",
    ["service"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)


def observability_handlers(
    service: str, readiness: Mapping[str, ReadinessCheck]
) -> list[HTTPRouteHandler]:
    @get("/health/live", include_in_schema=False, sync_to_thread=False)
    def live() -> dict[str, str]:
        return {"status": "ok", "service": service}

    @get("/health/ready", include_in_schema=False)
    async def ready() -> Response[Any]:
        failing: list[str] = []
        warnings: dict[str, str] = {}
        for name, check in readiness.items():
            try:
                warning = await asyncio.wait_for(check(), CHECK_TIMEOUT_S)
                if warning:
                    warnings[name] = warning
            except Exception as error:  # any failure means not ready, and why is logged
                log.warning("not_ready", dependency=name, error=type(error).__name__)
                failing.append(name)
        if failing:
            return problem_response(
                503,
                "upstream_unavailable",
                f"not ready: {', '.join(failing)} unavailable",
                headers={"Retry-After": "5"},
                extra={"failing": failing},
            )
        body: dict[str, Any] = {"status": "ok", "service": service, "checks": list(readiness)}
        if warnings:
            body["warnings"] = warnings
        return Response(body)

    @get("/metrics", include_in_schema=False, sync_to_thread=False)
    def metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    return [live, ready, metrics]
