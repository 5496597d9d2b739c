"""The connection options every Redis client of the platform is made with.

redis-py names itself to the server on each new connection (CLIENT SETINFO). Left to itself it
looks its own version up in the installed packages' metadata every time: about 1 ms of
event-loop CPU per connection here, paid 64 times over when a burst grows the pool (README,
Performance). The version is looked up once, at import.
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

from redis.driver_info import DriverInfo

DRIVER = DriverInfo(name="redis-py", lib_version=metadata.version("redis"))


def redis_options(*, timeout_s: float) -> dict[str, Any]:
    """Keyword arguments for `redis.asyncio.Redis.from_url` (or a storage passing them on)."""
    return {
        "socket_timeout": timeout_s,
        "socket_connect_timeout": timeout_s,
        "driver_info": DRIVER,
    }
