"""The verifier's Prometheus metrics, when prometheus-client is installed (the `prometheus`
extra). Without it the same names are counters that count nothing, so verification never
needs it."""

from __future__ import annotations

import importlib
from typing import Any, Protocol


class Metric(Protocol):
    def labels(self, *values: str) -> Any: ...

    def inc(self, amount: float = 1) -> None: ...


class Gauge(Protocol):
    def set(self, value: float) -> None: ...


class _Uncounted:
    def labels(self, *values: str) -> _Uncounted:
        return self

    def inc(self, amount: float = 1) -> None:
        return None

    def set(self, value: float) -> None:
        return None


def _prometheus() -> Any:
    try:
        return importlib.import_module("prometheus_client")
    except ImportError:
        return None


_client = _prometheus()
ENABLED = _client is not None


def _counter(name: str, documentation: str, labels: list[str]) -> Metric:
    return _client.Counter(name, documentation, labels) if ENABLED else _Uncounted()


JWKS_FETCHES = _counter(
    "token_verifier_jwks_fetches_total", "JWKS fetches by result and reason", ["result", "reason"]
)
JWKS_KEYS: Gauge = (
    _client.Gauge("token_verifier_jwks_keys", "Verification keys held") if ENABLED else _Uncounted()
)
VERIFICATIONS = _counter(
    "token_verifier_verifications_total", "Access-token verifications by result", ["result"]
)

REVOCATION_FETCHES = _counter(
    "token_verifier_revocation_fetches_total", "Revocation-list fetches by result", ["result"]
)
REVOCATION_AGE: Gauge = (
    _client.Gauge(
        "token_verifier_revocation_list_age_seconds",
        "Seconds since the revocation list was last brought up to date",
    )
    if ENABLED
    else _Uncounted()
)
REVOCATION_ENTRIES: Gauge = (
    _client.Gauge("token_verifier_revocation_entries", "Revoked sessions and subjects held")
    if ENABLED
    else _Uncounted()
)
