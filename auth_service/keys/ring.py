"""The signing key ring: which key signs, which keys verifiers may see, and rotation.

Timing rules (the JWKS section of the contract):
- a `next` key is published in the JWKS at least `jwks_max_age` seconds before it signs, so a
  verifier whose cached JWKS is as old as the JWKS `Cache-Control` allows already knows it;
- a `retired` key stays published until every token it signed has expired (access TTL + leeway),
  then its row — private part included — is deleted.
All changes happen in one transaction that first updates the single `key_ring_lock` row, so
replicas take turns and agree through the database; each replica re-reads the ring every few
seconds, never trusting its own memory for longer.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from joserfc import jwk
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from auth_service.keys.encryption import KeyEncryptor
from auth_service.keys.models import KeyRingLock, SigningKey

LEEWAY_S = 60
RELOAD_EVERY_S = 5.0
log = structlog.get_logger("keys")

SigningJWK = jwk.ECKey | jwk.RSAKey | jwk.OKPKey


class RotationTooSoonError(Exception):
    """The next key has not been published long enough for verifiers to have seen it."""


def generate_key(alg: str) -> SigningJWK:
    params: jwk.KeyParameters = {"use": "sig", "alg": alg}
    key: SigningJWK
    if alg == "ES256":
        key = jwk.ECKey.generate_key("P-256", params, auto_kid=True)
    elif alg == "Ed25519":
        key = jwk.OKPKey.generate_key("Ed25519", params, auto_kid=True)
    elif alg in ("RS256", "PS256"):
        key = jwk.RSAKey.generate_key(2048, params, auto_kid=True)
    else:
        raise ValueError(f"unsupported signing algorithm {alg}")
    return key


@dataclass(frozen=True)
class ActiveKey:
    kid: str
    alg: str
    key: SigningJWK


@dataclass(frozen=True)
class RingSnapshot:
    active: ActiveKey
    public_keys: tuple[dict[str, Any], ...]
    loaded_at: float


def _utc(epoch: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(epoch, tz=datetime.UTC)


class KeyRing:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        encryptor: KeyEncryptor,
        *,
        alg: str,
        access_token_ttl: int,
        rotation_interval: int,
        jwks_max_age: int,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._sessions = sessions
        self._encryptor = encryptor
        self._alg = alg
        self._access_ttl = access_token_ttl
        self._rotation_interval = rotation_interval
        self._jwks_max_age = jwks_max_age
        self._now = now
        self._snapshot: RingSnapshot | None = None
        self._reload_lock = asyncio.Lock()

    # --- reading ------------------------------------------------------------------------------

    async def snapshot(self) -> RingSnapshot:
        snapshot = self._snapshot
        if snapshot is not None and time.monotonic() - snapshot.loaded_at < RELOAD_EVERY_S:
            return snapshot
        async with self._reload_lock:
            snapshot = self._snapshot
            if snapshot is None or time.monotonic() - snapshot.loaded_at >= RELOAD_EVERY_S:
                snapshot = await self.reload()
            return snapshot

    async def reload(self) -> RingSnapshot:
        async with self._sessions() as session:
            rows = (await session.scalars(select(SigningKey))).all()
        active_rows = sorted(
            (row for row in rows if row.state == "active"),
            key=lambda row: row.activated_at or row.published_at,
        )
        if not active_rows:
            # A fresh database: the first start creates the ring.
            await self.maintain()
            return await self.reload()
        newest = active_rows[-1]
        private = self._encryptor.decrypt(newest.kid, newest.private_key_encrypted)
        key = jwk.import_key(json.loads(private))
        snapshot = RingSnapshot(
            active=ActiveKey(newest.kid, newest.alg, key),  # type: ignore[arg-type]
            public_keys=tuple(
                json.loads(row.public_jwk)
                for row in sorted(rows, key=lambda row: row.published_at, reverse=True)
            ),
            loaded_at=time.monotonic(),
        )
        self._snapshot = snapshot
        return snapshot

    async def jwks(self) -> dict[str, Any]:
        return {"keys": list((await self.snapshot()).public_keys)}

    async def verify_decryptable(self) -> None:
        """Open every stored private key once: a wrong key-encryption key fails here, at start."""
        async with self._sessions() as session:
            rows = (await session.scalars(select(SigningKey))).all()
        for row in rows:
            self._encryptor.decrypt(row.kid, row.private_key_encrypted)

    # --- changing -----------------------------------------------------------------------------

    async def maintain(self) -> bool:
        """Bring the ring to its rules at this moment; rotate if the schedule says so.

        Returns True when the ring changed. Safe to call from every replica at once.
        """
        async with self._sessions() as session, session.begin():
            rows = await self._lock_and_load(session)
            now = self._now()
            rows, changed = await self._purge_expired(session, rows, now)
            active = [row for row in rows if row.state == "active"]
            upcoming = [row for row in rows if row.state == "next"]
            if not active:
                # First start: the very first key signs at once (there is no cached JWKS to
                # respect yet), and a successor is published beside it.
                first = self._new_row(now, state="active")
                session.add(first)
                session.add(self._new_row(now, state="next"))
                log.info("key_ring_created", kid=first.kid, alg=first.alg)
                return True
            if not upcoming:
                session.add(self._new_row(now, state="next"))
                changed = True
            elif self._rotation_due(active[-1], upcoming[0], now):
                self._promote(session, active, upcoming[0], now)
                changed = True
        if changed:
            self._snapshot = None
        return changed

    async def rotate(self, *, force: bool = False) -> str:
        """Make the next key sign now; returns its kid.

        Without `force` the next key must have been published for `jwks_max_age` seconds.
        `force` is for a compromised key: verifiers that cached the JWKS will refetch it when
        they see the unknown kid.
        """
        async with self._sessions() as session, session.begin():
            rows = await self._lock_and_load(session)
            now = self._now()
            active = [row for row in rows if row.state == "active"]
            upcoming = [row for row in rows if row.state == "next"]
            if not upcoming:
                upcoming = [self._new_row(now, state="next")]
                session.add(upcoming[0])
                await session.flush()
            candidate = upcoming[0]
            published_for = now - candidate.published_at.timestamp()
            if not force and published_for < self._jwks_max_age:
                raise RotationTooSoonError(
                    f"next key {candidate.kid} published {int(published_for)}s ago; verifiers may "
                    f"cache the JWKS for {self._jwks_max_age}s (use --force for a compromised key)"
                )
            self._promote(session, active, candidate, now)
        self._snapshot = None
        return candidate.kid

    async def _lock_and_load(self, session: AsyncSession) -> list[SigningKey]:
        # The lock row is created by the first migration, so this UPDATE always takes the lock.
        await session.execute(
            update(KeyRingLock).where(KeyRingLock.id == 1).values(version=KeyRingLock.version + 1)
        )
        return list((await session.scalars(select(SigningKey))).all())

    def _rotation_due(self, active: SigningKey, upcoming: SigningKey, now: float) -> bool:
        started = (active.activated_at or active.published_at).timestamp()
        published_for = now - upcoming.published_at.timestamp()
        return now - started >= self._rotation_interval and published_for >= self._jwks_max_age

    def _promote(
        self, session: AsyncSession, active: list[SigningKey], upcoming: SigningKey, now: float
    ) -> None:
        for row in active:
            row.state = "retired"
            row.retired_at = _utc(now)
            row.remove_after = _utc(now + self._access_ttl + LEEWAY_S)
        upcoming.state = "active"
        upcoming.activated_at = _utc(now)
        session.add(self._new_row(now, state="next"))
        log.info(
            "key_rotated",
            active_kid=upcoming.kid,
            retired_kids=[row.kid for row in active],
        )

    async def _purge_expired(
        self, session: AsyncSession, rows: list[SigningKey], now: float
    ) -> tuple[list[SigningKey], bool]:
        def expired(row: SigningKey) -> bool:
            return (
                row.state == "retired"
                and row.remove_after is not None
                and (row.remove_after.timestamp() <= now)
            )

        gone = [row for row in rows if expired(row)]
        for row in gone:
            await session.delete(row)
        if gone:
            log.info("keys_removed", kids=[row.kid for row in gone])
        return [row for row in rows if not expired(row)], bool(gone)

    def _new_row(self, now: float, *, state: str) -> SigningKey:
        key = generate_key(self._alg)
        kid = key.kid
        assert kid is not None
        public = key.as_dict(private=False)
        public.update({"kid": kid, "alg": self._alg, "use": "sig"})
        private = json.dumps(key.as_dict(private=True)).encode()
        return SigningKey(
            kid=kid,
            alg=self._alg,
            state=state,
            public_jwk=json.dumps(public, sort_keys=True),
            private_key_encrypted=self._encryptor.encrypt(kid, private),
            published_at=_utc(now),
            activated_at=_utc(now) if state == "active" else None,
            retired_at=None,
            remove_after=None,
        )
