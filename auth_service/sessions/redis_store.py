"""The refresh-session store in Redis (production).

Keys, under the configured prefix:
  t:<digest>  hash  sid, exp, and once rotated: retired, succ (successor digest), sealed
  s:<sid>     hash  user, created, used, exp (absolute end), cur (current digest), curexp,
                    ua, ip, and once ended: revoked
  u:<user>    set   the user's session ids
Each key expires with its session, so Redis forgets a session by itself. Every change that
reads before it writes is one Lua script, hence atomic: two refreshes of one token run one
after the other, and the second gets the grace answer, never a second successor.

The scripts build key names from the prefix, so this store needs a single Redis (or a
primary with replicas), not Redis Cluster.
"""

from __future__ import annotations

import base64
import math
import uuid
from typing import Any

import redis.asyncio as redis

from auth_service.sessions import store
from auth_service.sessions.store import (
    EndedSession,
    IssuedRefresh,
    Lifetimes,
    RefreshError,
    SessionInfo,
)
from auth_service.sessions.tokens import (
    digest,
    new_refresh_token,
    open_successor,
    seal_successor,
)
from kit.redis_options import redis_options

# Writes a new session, its first token and the user's index in one round trip.
_CREATE = """
local p, sid, user, digest, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local exp, curexp, ua, ip, finish = ARGV[6], ARGV[7], ARGV[8], ARGV[9], tonumber(ARGV[10])
local skey, tkey, ukey = p .. 's:' .. sid, p .. 't:' .. digest, p .. 'u:' .. user
redis.call('HSET', skey, 'user', user, 'created', now, 'used', now, 'exp', exp,
  'cur', digest, 'curexp', curexp, 'ua', ua, 'ip', ip, 'claims', ARGV[11])
redis.call('EXPIREAT', skey, finish)
redis.call('HSET', tkey, 'sid', sid, 'exp', curexp)
redis.call('EXPIREAT', tkey, finish)
redis.call('SADD', ukey, sid)
if redis.call('EXPIRETIME', ukey) < finish then redis.call('EXPIREAT', ukey, finish) end
return 1
"""

# Returns {status, sid, user, created, used, exp, curexp, ua, ip, claims, sealed}.
_ROTATE = """
local p, now, grace = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local new_digest, sealed, ttl = ARGV[4], ARGV[5], tonumber(ARGV[6])
local t = redis.call('HMGET', KEYS[1], 'sid', 'exp', 'retired', 'succ', 'sealed')
if not t[1] then return {'invalid'} end
local skey = p .. 's:' .. t[1]
local s = redis.call('HMGET', skey, 'user', 'exp', 'cur', 'curexp', 'revoked')
if not s[1] then return {'invalid'} end
local sid, user = t[1], s[1]
if s[5] then return {'revoked', sid, user} end
if tonumber(s[2]) <= now then return {'expired', sid, user} end
local status, out_sealed = 'rotated', ''
if not t[3] then
  if tonumber(t[2]) <= now then return {'expired', sid, user} end
  local exp = math.min(now + ttl, tonumber(s[2]))
  redis.call('HSET', KEYS[1], 'retired', ARGV[2], 'succ', new_digest, 'sealed', sealed)
  local nkey = p .. 't:' .. new_digest
  redis.call('HSET', nkey, 'sid', sid, 'exp', string.format('%.6f', exp))
  redis.call('EXPIREAT', nkey, math.ceil(tonumber(s[2])))
  redis.call('HSET', skey, 'cur', new_digest, 'curexp', string.format('%.6f', exp), 'used', ARGV[2])
elseif now - tonumber(t[3]) <= grace and t[4] == s[3] then
  status, out_sealed = 'grace', t[5]
else
  redis.call('HSET', skey, 'revoked', ARGV[2])
  redis.call('SREM', p .. 'u:' .. user, sid)
  return {'reused', sid, user}
end
local f = redis.call('HMGET', skey, 'created', 'used', 'exp', 'curexp', 'ua', 'ip', 'claims')
return {status, sid, user, f[1], f[2], f[3], f[4], f[5], f[6], f[7] or '{}', out_sealed}
"""

# Ends the session a token (current or retired) belongs to. Returns {sid, user} when it
# ended one, an empty list otherwise.
_END_SESSION_OF = """
local p = ARGV[1]
local sid = redis.call('HGET', KEYS[1], 'sid')
if not sid then return {} end
local skey = p .. 's:' .. sid
local s = redis.call('HMGET', skey, 'user', 'revoked')
if not s[1] or s[2] then return {} end
redis.call('HSET', skey, 'revoked', ARGV[2])
redis.call('SREM', p .. 'u:' .. s[1], sid)
return {sid, s[1]}
"""

# Ends one live session if it is the user's. Returns 1 when it did.
_REVOKE_SESSION = """
local p, sid, user, now = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local skey = p .. 's:' .. sid
local s = redis.call('HMGET', skey, 'user', 'revoked', 'exp', 'curexp')
if s[1] ~= user or s[2] or tonumber(s[3]) <= now or tonumber(s[4]) <= now then return 0 end
redis.call('HSET', skey, 'revoked', ARGV[4])
redis.call('SREM', p .. 'u:' .. user, sid)
return 1
"""

# Ends every session of the user but one (ARGV[3], may be empty). Returns the ids it ended.
_REVOKE_ALL = """
local p, user, keep, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local ukey = p .. 'u:' .. user
local ended = {}
for _, sid in ipairs(redis.call('SMEMBERS', ukey)) do
  if sid ~= keep then
    local skey = p .. 's:' .. sid
    if redis.call('EXISTS', skey) == 1 and not redis.call('HGET', skey, 'revoked') then
      redis.call('HSET', skey, 'revoked', now)
      table.insert(ended, sid)
    end
    redis.call('SREM', ukey, sid)
  end
end
return ended
"""


def _stamp(value: float) -> str:
    return f"{value:.6f}"


SESSION_FIELDS = ["created", "used", "exp", "curexp", "ua", "ip", "claims"]


def _info(sid: str, user: str, fields: list[Any]) -> SessionInfo:
    created, used, expires, current_expires, user_agent, ip, claims = fields
    return SessionInfo(
        id=sid,
        user_id=user,
        created_at=float(created),
        last_used_at=float(used),
        expires_at=min(float(expires), float(current_expires)),
        user_agent=user_agent or "",
        ip=ip or "",
        claims=claims or "{}",
    )


class RedisRefreshSessionStore:
    def __init__(self, url: str, *, prefix: str, lifetimes: Lifetimes) -> None:
        self._redis: redis.Redis = redis.Redis.from_url(
            url,
            decode_responses=True,
            health_check_interval=30,
            **redis_options(timeout_s=2),
        )
        self._prefix = prefix
        self._lifetimes = lifetimes
        self._create = self._redis.register_script(_CREATE)
        self._rotate = self._redis.register_script(_ROTATE)
        self._end_session_of = self._redis.register_script(_END_SESSION_OF)
        self._revoke_session = self._redis.register_script(_REVOKE_SESSION)
        self._revoke_all = self._redis.register_script(_REVOKE_ALL)

    def _key(self, kind: str, name: str) -> str:
        return f"{self._prefix}{kind}:{name}"

    async def create(
        self, *, user_id: str, user_agent: str, ip: str, now: float, claims: str = "{}"
    ) -> IssuedRefresh:
        token = new_refresh_token()
        sid = str(uuid.uuid4())
        session_expires = now + self._lifetimes.session_max_age
        token_expires = min(now + self._lifetimes.refresh_ttl, session_expires)
        await self._create(
            keys=[],
            args=[
                self._prefix,
                sid,
                user_id,
                digest(token),
                _stamp(now),
                _stamp(session_expires),
                _stamp(token_expires),
                user_agent,
                ip,
                math.ceil(session_expires),
                claims,
            ],
        )
        info = SessionInfo(
            id=sid,
            user_id=user_id,
            created_at=now,
            last_used_at=now,
            expires_at=token_expires,
            user_agent=user_agent,
            ip=ip,
            claims=claims,
        )
        return IssuedRefresh(session=info, refresh_token=token, expires_at=token_expires)

    async def rotate(self, refresh_token: str, *, now: float) -> IssuedRefresh:
        successor = new_refresh_token()
        sealed = base64.b64encode(seal_successor(successor, rotated_token=refresh_token)).decode()
        result: list[Any] = await self._rotate(
            keys=[self._key("t", digest(refresh_token))],
            args=[
                self._prefix,
                _stamp(now),
                self._lifetimes.reuse_grace,
                digest(successor),
                sealed,
                self._lifetimes.refresh_ttl,
            ],
        )
        status = result[0]
        if status == "invalid":
            raise RefreshError(store.INVALID, "refresh token not recognised")
        ids = {"session_id": result[1], "user_id": result[2]}
        if status == "revoked":
            raise RefreshError(store.REVOKED, "session has ended", **ids)
        if status == "expired":
            raise RefreshError(store.EXPIRED, "refresh token expired", **ids)
        if status == "reused":
            raise RefreshError(store.REUSED, "refresh token was already used", **ids)
        info = _info(result[1], result[2], result[3:10])
        if status == "grace":
            successor_or_none = open_successor(
                base64.b64decode(result[10]), rotated_token=refresh_token
            )
            if successor_or_none is None:  # cannot happen unless the store was tampered with
                raise RefreshError(store.INVALID, "refresh token not recognised")
            successor = successor_or_none
        return IssuedRefresh(session=info, refresh_token=successor, expires_at=info.expires_at)

    async def revoke_by_token(self, refresh_token: str, *, now: float) -> EndedSession | None:
        ended: list[Any] = await self._end_session_of(
            keys=[self._key("t", digest(refresh_token))], args=[self._prefix, _stamp(now)]
        )
        return EndedSession(str(ended[0]), str(ended[1])) if ended else None

    async def revoke_session(self, *, user_id: str, session_id: str, now: float) -> bool:
        ended = await self._revoke_session(
            keys=[], args=[self._prefix, session_id, user_id, _stamp(now)]
        )
        return bool(ended)

    async def revoke_all(
        self, *, user_id: str, now: float, except_session_id: str | None = None
    ) -> list[str]:
        ended: list[Any] = await self._revoke_all(
            keys=[], args=[self._prefix, user_id, except_session_id or "", _stamp(now)]
        )
        return [str(sid) for sid in ended]

    async def list_sessions(self, *, user_id: str, now: float) -> list[SessionInfo]:
        user_key = self._key("u", user_id)
        sids = sorted(str(sid) for sid in await self._redis.smembers(user_key))
        if not sids:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for sid in sids:
                pipe.hmget(self._key("s", sid), ["user", "revoked", *SESSION_FIELDS])
            rows = await pipe.execute()
        live: list[SessionInfo] = []
        gone: list[str] = []
        for sid, row in zip(sids, rows, strict=True):
            if row[0] != user_id or row[1] is not None:
                gone.append(sid)
                continue
            info = _info(sid, user_id, row[2:])
            if info.expires_at > now:
                live.append(info)
        if gone:
            await self._redis.srem(user_key, *gone)
        return sorted(live, key=lambda info: info.last_used_at, reverse=True)

    async def session(self, session_id: str, *, now: float) -> SessionInfo | None:
        found = await self._live(session_id, now)
        return None if found is None else found[0]

    async def session_of(self, refresh_token: str, *, now: float) -> SessionInfo | None:
        presented = digest(refresh_token)
        sid, expires, retired = await self._redis.hmget(
            self._key("t", presented), ["sid", "exp", "retired"]
        )
        if sid is None or expires is None or retired is not None or float(expires) <= now:
            return None
        found = await self._live(str(sid), now)
        if found is None or found[1] != presented:
            return None
        return found[0]

    async def _live(self, sid: str, now: float) -> tuple[SessionInfo, str] | None:
        """The live session and its current token's digest."""
        row = await self._redis.hmget(
            self._key("s", sid), ["user", "revoked", *SESSION_FIELDS, "cur"]
        )
        if row[0] is None or row[1] is not None:
            return None
        info = _info(sid, str(row[0]), row[2:9])
        return (info, str(row[9])) if info.expires_at > now else None

    async def purge_expired(self, *, now: float) -> int:
        """Redis expires every key with its session; nothing to do."""
        return 0

    async def ping(self) -> None:
        await self._redis.ping()

    async def close(self) -> None:
        await self._redis.aclose()
