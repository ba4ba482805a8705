"""Exponential back-off per client address, for login attempts: in memory or shared in Redis.

An address may try `free` times at once; each further attempt first waits `base_s`, then twice
that, and so on up to `cap_s`. `reserve` counts an attempt before its outcome is known (as the
per-account limit does, api/ratelimit.py), so concurrent attempts cannot all pass one check, and
answers how long to wait when the address is still backing off; a successful login `refund`s
its attempt and may try again at once. An address that made no attempt for `forget_s` after its
last wait starts over.

Redis keeps one hash per address (`n`, `next` in µs of the server's clock) updated by one Lua
script, so every API process sees the same back-off; the key expires when it would be forgotten.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from quantsaas.api.ratelimit import Limiter, RedisLimiter

if TYPE_CHECKING:
    from redis.asyncio import Redis  # the limiter's client: a memory limiter loads no redis

NS_PER_S = 1_000_000_000
US_PER_S = 1_000_000


@dataclass(frozen=True)
class BackoffPolicy:
    free: int = 5
    base_s: float = 1.0
    cap_s: float = 900.0
    forget_s: float = 900.0

    def delay_s(self, attempts: int) -> float:
        """The wait after the `attempts`-th attempt."""
        if attempts <= self.free:
            return 0.0
        return min(self.cap_s, self.base_s * 2.0 ** min(attempts - self.free - 1, 64))


class Backoff(Protocol):
    policy: BackoffPolicy

    async def reserve(self, key: str) -> float:
        """0.0: go ahead (the attempt counts until refunded); else seconds still to wait."""
        ...

    async def refund(self, key: str) -> None:
        """The reserved attempt succeeded: it does not count, and the next may go at once."""
        ...


class MemoryBackoff:
    """One process. `clock` returns monotonic integer nanoseconds."""

    def __init__(self, policy: BackoffPolicy, clock: Callable[[], int] = time.monotonic_ns) -> None:
        self.policy = policy
        self._clock = clock
        self._state: dict[str, tuple[int, int]] = {}  # key -> (attempts, next allowed ns)
        self._sweep_at = 1024

    def __len__(self) -> int:
        return len(self._state)

    async def reserve(self, key: str) -> float:
        now = self._clock()
        attempts, next_at = self._live(key, now)
        if now < next_at:
            return (next_at - now) / NS_PER_S
        attempts += 1
        self._state[key] = (attempts, now + round(self.policy.delay_s(attempts) * NS_PER_S))
        if len(self._state) >= self._sweep_at:
            self._sweep(now)
        return 0.0

    async def refund(self, key: str) -> None:
        now = self._clock()
        attempts, _ = self._live(key, now)
        if attempts <= 1:
            self._state.pop(key, None)
        else:
            self._state[key] = (attempts - 1, now)

    def _live(self, key: str, now: int) -> tuple[int, int]:
        found = self._state.get(key)
        if found is None or now >= found[1] + round(self.policy.forget_s * NS_PER_S):
            return 0, 0
        return found

    def _sweep(self, now: int) -> None:
        forget = round(self.policy.forget_s * NS_PER_S)
        self._state = {k: v for k, v in self._state.items() if now < v[1] + forget}
        self._sweep_at = max(1024, 2 * len(self._state))


# KEYS[1]; ARGV: free, base µs, cap µs, forget µs, mode (1 reserve, 0 refund). Returns the wait
# in µs (0: go ahead).
_BACKOFF_LUA = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local free, base, cap, forget = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]),
  tonumber(ARGV[4])
local n = tonumber(redis.call('HGET', KEYS[1], 'n') or '0')
local next_at = tonumber(redis.call('HGET', KEYS[1], 'next') or '0')
if ARGV[5] == '0' then
  if n <= 1 then
    redis.call('DEL', KEYS[1])
  else
    redis.call('HSET', KEYS[1], 'n', n - 1, 'next', now)
    redis.call('PEXPIRE', KEYS[1], math.ceil(forget / 1000))
  end
  return 0
end
if now < next_at then return math.max(next_at - now, 1) end
n = n + 1
local delay = 0
if n > free then delay = math.min(cap, base * 2 ^ math.min(n - free - 1, 64)) end
redis.call('HSET', KEYS[1], 'n', n, 'next', string.format('%.17g', now + delay))
redis.call('PEXPIRE', KEYS[1], math.ceil((delay + forget) / 1000))
return 0
"""


class RedisBackoff:
    """Shared by every process using the same Redis server and prefix."""

    def __init__(self, redis: Redis, policy: BackoffPolicy, prefix: str) -> None:
        self.policy = policy
        self.prefix = prefix
        self._script = redis.register_script(_BACKOFF_LUA)

    async def _run(self, key: str, mode: int) -> int:
        policy = self.policy
        args = [
            policy.free,
            round(policy.base_s * US_PER_S),
            round(policy.cap_s * US_PER_S),
            round(policy.forget_s * US_PER_S),
            mode,
        ]
        return int(await self._script(keys=[f"{self.prefix}{key}"], args=args))

    async def reserve(self, key: str) -> float:
        return await self._run(key, 1) / US_PER_S

    async def refund(self, key: str) -> None:
        await self._run(key, 0)


def backoff_for(limiter: Limiter, policy: BackoffPolicy) -> Backoff:
    """Back-off state where the limiter keeps its counters (shared when that is Redis)."""
    if isinstance(limiter, RedisLimiter):
        return RedisBackoff(limiter.redis, policy, f"{limiter.prefix}backoff:")
    return MemoryBackoff(policy)


def wait_text(seconds: float) -> str:
    return f"{max(1, math.ceil(seconds))} s"
