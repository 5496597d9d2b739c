"""Two process-wide adjustments every service makes once its app is built, both measured
(README, Performance).

- Litestar resolves a handler's independent dependencies concurrently, in an anyio task group
  per request (litestar-org/litestar#4563). Ours are ready-made objects and one token check,
  so starting the tasks cost more than the work itself: about 12 % of a refresh's CPU. They
  are resolved one after another instead, batch by batch as before.
- CPython's full garbage collections walk every object, and after start-up almost all of
  them are the framework's and the app's, which live as long as the process. Each full
  collection stalled the event loop long enough to triple a refresh's p99; frozen, they are
  skipped.
"""

from __future__ import annotations

import gc
from typing import Any

from litestar._kwargs.cleanup import DependencyCleanupGroup
from litestar._kwargs.dependencies import resolve_dependency
from litestar._kwargs.kwargs_model import KwargsModel
from litestar.connection import ASGIConnection


async def _resolve_in_order(
    self: KwargsModel, connection: ASGIConnection[Any, Any, Any, Any], kwargs: dict[str, Any]
) -> DependencyCleanupGroup:
    cleanup_group = DependencyCleanupGroup()
    for batch in self.dependency_batches:
        for dependency in batch:
            await resolve_dependency(dependency, connection, kwargs, cleanup_group)
    return cleanup_group


def resolve_dependencies_in_order() -> None:
    KwargsModel.resolve_dependencies = _resolve_in_order  # type: ignore[method-assign]


def freeze_startup_objects() -> None:
    """Move everything alive now out of the collector's sight (call when start-up is over)."""
    gc.collect()
    gc.freeze()
