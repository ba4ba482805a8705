"""The per-owner WebSocket connection limit across processes: one Protocol, memory and Redis.

One API process counts its own sockets (`auth.OpenSockets`); several API processes behind one
Redis (`--bus redis://`, which also moves the rate limits there) must share the count, or N
processes would allow N times a tier's `ws_connections`.

`RedisConnections` keeps one sorted set per owner (`quantsaas:ws:<owner>`): a member per open
socket (`<process id>:<socket id>`), scored by its expiry in the Redis server's clock (ms). One Lua
script drops expired members, counts, and adds the new one only while under the limit, so two
processes admitting at once cannot both take the last place. Each process refreshes the expiry
of its open sockets every `REFRESH_S`; a process that dies without closing its sockets frees
their places within `TTL_S`. Redis unreachable: the handshake is refused with 503 (close 1013),
as the rate limiter fails closed.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from redis.asyncio import Redis  # loaded by RedisConnections only: memory needs no redis

log = logging.getLogger(__name__)

PREFIX = "quantsaas:ws:"
TTL_S = 60.0
REFRESH_S = 20.0
PROCESS = uuid.uuid4().hex[:12]
"""This process's part of every connection id."""

Held = Callable[[], Iterable[tuple[str, str]]]
"""(owner, connection id) of every socket this process holds open."""

_ADMIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
return 1
"""

_REFRESH = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i = 1, #KEYS do
  redis.call('ZADD', KEYS[i], 'XX', now + tonumber(ARGV[#KEYS + 1]), ARGV[i])
  redis.call('PEXPIRE', KEYS[i], tonumber(ARGV[#KEYS + 1]))
end
return #KEYS
"""


class ConnectionsUnavailable(Exception):
    """The shared count cannot be reached: refuse the handshake (fail closed)."""


class Connections(Protocol):
    async def admit(self, owner: str, connection: str, limit: int) -> bool:
        """Take a place for `connection` if `owner` holds fewer than `limit` (atomic)."""
        ...

    async def release(self, owner: str, connection: str) -> None: ...

    async def run(self, held: Held) -> None:
        """Background job: keep this process's places alive."""
        ...

    async def close(self) -> None: ...


def connection_id(session: object) -> str:
    return f"{PROCESS}:{id(session)}"


class LocalConnections:
    """One process: its own count (`OpenSockets`) is the whole truth."""

    async def admit(self, owner: str, connection: str, limit: int) -> bool:
        return True  # the caller checked the local count already, without awaiting

    async def release(self, owner: str, connection: str) -> None:
        return None

    async def run(self, held: Held) -> None:
        await asyncio.Event().wait()

    async def close(self) -> None:
        return None


class RedisConnections:
    def __init__(self, url: str, ttl_s: float = TTL_S, refresh_s: float = REFRESH_S) -> None:
        from redis.asyncio import Redis
        from redis.exceptions import RedisError

        self._errors = (RedisError, OSError)
        self.redis: Redis = Redis.from_url(url, socket_connect_timeout=2.0, socket_timeout=2.0)
        self.ttl_ms = round(ttl_s * 1000)
        self.refresh_s = refresh_s
        self._admit: Any = self.redis.register_script(_ADMIT)
        self._refresh: Any = self.redis.register_script(_REFRESH)

    async def admit(self, owner: str, connection: str, limit: int) -> bool:
        try:
            taken = await self._admit(keys=[PREFIX + owner], args=[connection, limit, self.ttl_ms])
        except self._errors as exc:
            raise ConnectionsUnavailable(f"connection count unavailable: {exc}") from None
        return bool(taken)

    async def release(self, owner: str, connection: str) -> None:
        try:
            await self.redis.zrem(PREFIX + owner, connection)
        except self._errors as exc:  # the place expires within TTL_S anyway
            log.warning("could not release a connection place: %s", exc)

    async def refresh(self, held: Iterable[tuple[str, str]]) -> None:
        pairs = list(held)
        if pairs:
            keys = [PREFIX + owner for owner, _ in pairs]
            await self._refresh(keys=keys, args=[c for _, c in pairs] + [self.ttl_ms])

    async def run(self, held: Held) -> None:
        while True:
            await asyncio.sleep(self.refresh_s)
            try:
                await self.refresh(held())
            except self._errors as exc:
                log.warning("could not refresh connection places: %s", exc)

    async def close(self) -> None:
        await self.redis.aclose()


def open_connections(url: str) -> Connections:
    """Shared through Redis when the rate limits are (`--bus redis://`), else in process."""
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisConnections(url)
    return LocalConnections()
