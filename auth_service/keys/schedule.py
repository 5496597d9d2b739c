"""The automatic rotation schedule: every replica checks the ring; the database decides."""

from __future__ import annotations

import asyncio

import structlog

from auth_service.keys.ring import KeyRing

log = structlog.get_logger("keys")


async def maintain_forever(ring: KeyRing, every_s: float) -> None:
    while True:
        await asyncio.sleep(every_s)
        try:
            await ring.maintain()
        except Exception as error:  # the next round tries again; serving goes on meanwhile
            log.warning("key_maintenance_failed", error=type(error).__name__)
