"""Cost-weighted rate limiting with GCRA, in process memory or shared through Redis.

GCRA (generic cell rate algorithm) keeps one number per key, the theoretical arrival time
(TAT): the moment the key's budget would be whole again. A quota of `limit` units per
`window_s` earns one unit every `window_s / limit` seconds and holds at most `limit` units, so a
burst of `limit` is allowed at once and then `limit / window_s` units per second. A hit of `cost`
units moves the TAT `cost` intervals on, and is allowed only if the new TAT is at most one
window ahead of now. Over any interval of `e` seconds at most `limit + e * limit / window_s`
units are allowed.

A hit costing more than the quota's `limit` can never be allowed. It is denied without
consuming anything, and its `retry_after_s` is the time the quota takes to earn `cost` units,
at least one interval longer than the window. No request that can ever be allowed waits more
than a window, so such a wait (`Decision.never_allowed`) tells the caller to reject the request
outright, e.g. with a problem detail saying the cost exceeds the quota, rather than letting it
through or asking the client to wait forever.

State is kept per (quota name, key), so one key can be held to several quotas at once.

A hit can reserve units before work whose outcome decides whether it should have counted
(`refund` gives them back): a login spends one unit of the account's failure budget *before* the
password is verified, so concurrent guesses cannot all pass a check made before any failure was
recorded, and a right password hands the unit back.

Clients are counted by `client_bucket`: an IPv4 address, or the /64 network of an IPv6 address
(one subscriber usually gets a whole /64, so exact IPv6 addresses are an unlimited supply).

- `MemoryLimiter`: one process. Times are integer nanoseconds from an injectable monotonic
  clock, and TATs are kept multiplied by `limit`, so the arithmetic is exact. A key whose TAT
  has passed is the same as a key never seen, so such keys are dropped: whenever the table
  has doubled since the last sweep, one sweep drops every key whose TAT has passed, which keeps
  the table under max(1024, twice the keys still live) at amortised O(1) per hit.
- `RedisLimiter`: several processes share one budget. The same algorithm runs as one Lua script,
  so each hit is atomic, and it uses the Redis server's `TIME`, so the clocks of the API hosts
  do not matter (Redis >= 5: writes after `TIME` in a script need effects replication). Each
  key expires (`PX`) when its TAT passes. It uses `redis.asyncio`, already a dependency; the
  `limits` library is not used because its redis extra pins redis<8 and its async extra pulls
  in a second Redis client, coredis. Redis errors (`redis.exceptions.RedisError`) propagate:
  the caller chooses to fail open or closed.

`limit_headers` renders a decision as IETF draft-ietf-httpapi-ratelimit-headers-11 fields
(`RateLimit-Policy`, `RateLimit`), the `X-RateLimit-*` fields most clients read, and
`Retry-After` on a denial.
"""

from __future__ import annotations

import ipaddress
import math
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from quantsaas.errors import ConfigError

if TYPE_CHECKING:
    from redis.asyncio import Redis

NS_PER_S = 1_000_000_000
US_PER_S = 1_000_000
REDIS_PREFIX = "quantsaas:rl:"
REDIS_TIMEOUT_S = 2.0
MIN_WINDOW_S = 0.001
MIN_SWEEP_SIZE = 1024
"""MemoryLimiter tables smaller than this are never swept."""

_QUOTA_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


@dataclass(frozen=True)
class Quota:
    """`limit` units per `window_s` seconds, with bursts of up to `limit` units.

    `name` appears in the `RateLimit` headers and namespaces the limiter state, so it is kept
    to letters, digits, `_`, `.` and `-`.
    """

    name: str
    limit: int
    window_s: float

    def __post_init__(self) -> None:
        if not _QUOTA_NAME.fullmatch(self.name):
            raise ConfigError(f"quota name {self.name!r}: use 1-64 of A-Z a-z 0-9 _ . -")
        if self.limit < 1:
            raise ConfigError(f"quota {self.name}: limit must be at least 1, not {self.limit}")
        if not (MIN_WINDOW_S <= self.window_s < math.inf):
            raise ConfigError(f"quota {self.name}: window_s must be >= 1 ms, not {self.window_s}")

    @property
    def interval_s(self) -> float:
        """Seconds to earn one unit back."""
        return self.window_s / self.limit


@dataclass(frozen=True)
class Decision:
    """The outcome of a hit (or a peek) on one quota.

    `remaining`: units that could be spent right now (never negative). `reset_s`: seconds
    until the budget is whole again. `retry_after_s`: 0 when allowed; otherwise seconds until
    the same hit would be allowed, or, when its cost exceeds `limit`, the longer-than-a-window
    time needed to earn its cost (`never_allowed`).
    """

    allowed: bool
    limit: int
    remaining: int
    reset_s: float
    retry_after_s: float
    quota: Quota

    @property
    def never_allowed(self) -> bool:
        """Denied because the cost exceeds the limit: waiting would not help.

        Such a denial waits `cost` intervals, at least `window_s + interval_s`; any other waits
        at most `window_s` (the half interval absorbs rounding to ns or µs).
        """
        quota = self.quota
        return not self.allowed and self.retry_after_s > quota.window_s + quota.interval_s / 2


class Limiter(Protocol):
    async def hit(self, key: str, quota: Quota, cost: int = 1) -> Decision:
        """Spend `cost` units of `key`'s budget under `quota`, if they are available."""
        ...

    async def peek(self, key: str, quota: Quota) -> Decision:
        """What a hit of cost 1 would get, without spending anything."""
        ...

    async def refund(self, key: str, quota: Quota, cost: int = 1) -> None:
        """Give back `cost` units an earlier hit spent (never more than the budget holds)."""
        ...

    async def close(self) -> None: ...


def _check_cost(cost: int) -> None:
    if cost < 1:
        raise ValueError(f"cost must be at least 1, not {cost}")


class MemoryLimiter(Limiter):
    """GCRA in a dict, for one process. `clock` returns monotonic integer nanoseconds."""

    def __init__(self, clock: Callable[[], int] = time.monotonic_ns) -> None:
        self._clock = clock
        # (quota name, key) -> (TAT in ns multiplied by `scale`, scale = the quota's limit)
        self._tats: dict[tuple[str, str], tuple[int, int]] = {}
        self._sweep_at = MIN_SWEEP_SIZE

    def __len__(self) -> int:
        """Keys currently remembered (live ones plus expired ones not yet swept)."""
        return len(self._tats)

    async def hit(self, key: str, quota: Quota, cost: int = 1) -> Decision:
        _check_cost(cost)
        return self._decide(key, quota, cost, spend=True)

    async def peek(self, key: str, quota: Quota) -> Decision:
        return self._decide(key, quota, 1, spend=False)

    async def refund(self, key: str, quota: Quota, cost: int = 1) -> None:
        _check_cost(cost)
        state = (quota.name, key)
        stored = self._tats.get(state)
        if stored is None:
            return
        tat, scale = stored
        tat -= cost * round(quota.window_s * NS_PER_S) * scale // quota.limit
        if tat <= self._clock() * scale:
            del self._tats[state]
        else:
            self._tats[state] = (tat, scale)

    async def close(self) -> None:
        self._tats.clear()

    def _decide(self, key: str, quota: Quota, cost: int, spend: bool) -> Decision:
        now = self._clock()
        limit = quota.limit
        window = round(quota.window_s * NS_PER_S)
        # Every time below is in ns * limit, so one unit is exactly `window` of it.
        now_scaled = now * limit
        state = (quota.name, key)
        stored = self._tats.get(state)
        tat = now_scaled
        if stored is not None:
            stored_tat, scale = stored
            if scale != limit:  # the quota's limit changed since this key was last seen
                stored_tat = -(-stored_tat * limit // scale)
            tat = max(stored_tat, now_scaled)
        horizon = now_scaled + window * limit
        new_tat = tat + cost * window
        allowed = cost <= limit and new_tat <= horizon
        if cost > limit:
            retry_after = cost * window // limit
        elif allowed:
            if spend:
                self._tats[state] = (new_tat, limit)
                if len(self._tats) >= self._sweep_at:
                    self._sweep(now)
                tat = new_tat
            retry_after = 0
        else:
            # earliest `later` with tat + cost * window <= (later + window) * limit
            retry_after = -(-(new_tat - horizon) // limit)
        return Decision(
            allowed=allowed,
            limit=limit,
            remaining=min(limit, max(0, (horizon - tat) // window)),
            reset_s=(tat - now_scaled) / limit / NS_PER_S,
            retry_after_s=retry_after / NS_PER_S,
            quota=quota,
        )

    def _sweep(self, now: int) -> None:
        self._tats = {
            state: entry for state, entry in self._tats.items() if entry[0] > now * entry[1]
        }
        self._sweep_at = max(MIN_SWEEP_SIZE, 2 * len(self._tats))


# KEYS[1] state key. ARGV: limit, window in µs, cost, spend (1 hit / 0 peek).
# Returns {allowed, remaining, reset µs, retry-after µs}. The TAT is stored as a float in µs
# with 17 significant digits (Lua's tostring keeps only 14: 1.7e15 µs would lose its last units).
# A float near 1.7e15 is only exact to 0.25 µs, hence the half-µs SLACK in the comparisons:
# without it a burst of exactly `limit` units within one µs could be refused its last unit.
_GCRA_LUA = """
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local spend = ARGV[4] == '1'
local SLACK = 0.5
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local interval = window / limit
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local horizon = now + window
local new_tat = tat + cost * interval
local retry_after = 0
local allowed = 0
if cost > limit then
  retry_after = math.ceil(cost * interval)
elseif new_tat <= horizon + SLACK then
  allowed = 1
  if spend then
    tat = new_tat
    local ttl = math.ceil((tat - now) / 1000)
    redis.call('SET', KEYS[1], string.format('%.17g', tat), 'PX', math.max(ttl, 1))
  end
else
  retry_after = math.max(math.ceil(new_tat - horizon - SLACK), 1)
end
local remaining = math.floor((horizon + SLACK - tat) / interval)
if remaining < 0 then remaining = 0 end
if remaining > limit then remaining = limit end
return {allowed, remaining, math.ceil(tat - now), retry_after}
"""


# KEYS[1] state key. ARGV: limit, window in µs, cost. Moves the TAT back by `cost` intervals.
_REFUND_LUA = """
local stored = redis.call('GET', KEYS[1])
if not stored then return 0 end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local tat = tonumber(stored) - tonumber(ARGV[3]) * tonumber(ARGV[2]) / tonumber(ARGV[1])
if tat <= now then
  redis.call('DEL', KEYS[1])
else
  local ttl = math.max(math.ceil((tat - now) / 1000), 1)
  redis.call('SET', KEYS[1], string.format('%.17g', tat), 'PX', ttl)
end
return 1
"""


class RedisLimiter(Limiter):
    """GCRA in Redis, shared by every process using the same server and `prefix`."""

    def __init__(self, url: str, prefix: str = REDIS_PREFIX) -> None:
        from redis.asyncio import Redis  # a process on the memory limiter never loads redis
        from redis.asyncio.retry import Retry
        from redis.backoff import ExponentialBackoff
        from redis.exceptions import ConnectionError as RedisConnectionError

        self.prefix = prefix
        # after a Redis restart the pooled connections are dead: retry once on a fresh one
        self.redis: Redis = Redis.from_url(
            url,
            socket_connect_timeout=REDIS_TIMEOUT_S,
            socket_timeout=REDIS_TIMEOUT_S,
            retry=Retry(ExponentialBackoff(cap=0.1, base=0.01), 2),
            retry_on_error=[RedisConnectionError],
        )
        self._script = self.redis.register_script(_GCRA_LUA)
        self._refund = self.redis.register_script(_REFUND_LUA)

    def state_key(self, key: str, quota: Quota) -> str:
        """The Redis key holding the TAT of `key` under `quota`."""
        return f"{self.prefix}{quota.name}:{key}"

    async def hit(self, key: str, quota: Quota, cost: int = 1) -> Decision:
        _check_cost(cost)
        return await self._decide(key, quota, cost, spend=True)

    async def peek(self, key: str, quota: Quota) -> Decision:
        return await self._decide(key, quota, 1, spend=False)

    async def refund(self, key: str, quota: Quota, cost: int = 1) -> None:
        _check_cost(cost)
        window_us = round(quota.window_s * US_PER_S)
        await self._refund(keys=[self.state_key(key, quota)], args=[quota.limit, window_us, cost])

    async def close(self) -> None:
        await self.redis.aclose()

    async def _decide(self, key: str, quota: Quota, cost: int, spend: bool) -> Decision:
        window_us = round(quota.window_s * US_PER_S)
        args = [quota.limit, window_us, cost, 1 if spend else 0]
        reply = await self._script(keys=[self.state_key(key, quota)], args=args)
        allowed, remaining, reset_us, retry_after_us = (int(value) for value in reply)
        return Decision(
            allowed=allowed == 1,
            limit=quota.limit,
            remaining=remaining,
            reset_s=reset_us / US_PER_S,
            retry_after_s=retry_after_us / US_PER_S,
            quota=quota,
        )


def open_limiter(url: str) -> Limiter:
    """`memory` for one process, or a `redis://`, `rediss://` or `unix://` URL to share limits."""
    if url == "memory":
        return MemoryLimiter()
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisLimiter(url)
    raise ConfigError(f"rate limit backend {url!r}: use 'memory' or a redis:// URL")


def unavailable_errors() -> tuple[type[Exception], ...]:
    """What a limiter raises when its store cannot be reached: OSError, and RedisError once the
    Redis client is loaded (only a RedisLimiter loads it, so without it none can be raised)."""
    redis_exceptions = sys.modules.get("redis.exceptions")
    if redis_exceptions is None:
        return (OSError,)
    return (redis_exceptions.RedisError, OSError)


def client_bucket(ip: str) -> str:
    """The unit per-address limits count: an IPv4 address as is, an IPv6 address as its /64
    (an IPv4-mapped one as the IPv4 address), anything else (a Unix socket) unchanged."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def _whole_seconds(seconds: float) -> int:
    return max(0, math.ceil(seconds))


def limit_headers(decision: Decision) -> dict[str, str]:
    """Response header fields for `decision`; times are delta seconds, rounded up.

    `X-RateLimit-Reset` is delta seconds too (like `RateLimit`'s `t`), not an epoch time.
    """
    quota = decision.quota
    remaining = max(0, decision.remaining)
    reset = _whole_seconds(decision.reset_s)
    headers = {
        "RateLimit-Policy": f'"{quota.name}";q={quota.limit};w={_whole_seconds(quota.window_s)}',
        "RateLimit": f'"{quota.name}";r={remaining};t={reset}',
        "X-RateLimit-Limit": str(decision.limit),
        "X-RateLimit-Remaining": str(remaining),
        "X-RateLimit-Reset": str(reset),
    }
    if not decision.allowed:
        headers["Retry-After"] = str(max(1, math.ceil(decision.retry_after_s)))
    return headers
