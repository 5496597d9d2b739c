"""Where the verifier's few log lines go: structlog's logger when the service has structlog
(the platform's services do, and get their JSON lines), the standard library's otherwise, so
that structlog is not a dependency of the package."""

from __future__ import annotations

import logging
from typing import Any, Protocol


class Logger(Protocol):
    def warning(self, event: str, **fields: Any) -> Any: ...


class _StandardLogger:
    """`log.warning("event", key=value)` on the standard library: `event key=value …`."""

    def __init__(self, name: str) -> None:
        self._logger = logging.getLogger(name)

    def warning(self, event: str, **fields: Any) -> None:
        if self._logger.isEnabledFor(logging.WARNING):
            details = " ".join(f"{key}={value}" for key, value in fields.items())
            self._logger.warning("%s %s", event, details, extra={"fields": fields})


def get_logger(name: str) -> Logger:
    try:
        import structlog
    except ImportError:
        return _StandardLogger(name)
    logger: Logger = structlog.get_logger(name)
    return logger
