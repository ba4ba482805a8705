"""Exponential back-off per address: exact on a fake clock in memory, and the same behaviour
from the Redis script against a real redis-server."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from quantsaas.api.backoff import Backoff, BackoffPolicy, MemoryBackoff, RedisBackoff
from quantsaas.api.ratelimit import RedisLimiter

NS = 1_000_000_000
POLICY = BackoffPolicy(free=2, base_s=1.0, cap_s=8.0, forget_s=30.0)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000 * NS

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += round(seconds * NS)


def test_the_policy_doubles_after_the_free_attempts_up_to_the_cap() -> None:
    delays = [POLICY.delay_s(n) for n in range(1, 9)]
    assert delays == [0, 0, 1, 2, 4, 8, 8, 8]
    assert BackoffPolicy(free=0, base_s=1, cap_s=900).delay_s(10_000) == 900


@pytest.mark.asyncio
async def test_memory_backoff_waits_doubles_refunds_and_forgets() -> None:
    clock = Clock()
    backoff = MemoryBackoff(POLICY, clock)
    assert [await backoff.reserve("a") for _ in range(3)] == [0, 0, 0]  # the 3rd sets 1 s
    assert await backoff.reserve("a") == 1.0
    assert await backoff.reserve("b") == 0  # addresses are independent
    clock.advance(1.0)
    assert await backoff.reserve("a") == 0  # the 4th: now 2 s
    clock.advance(1.5)
    assert await backoff.reserve("a") == 0.5
    clock.advance(0.5)
    await backoff.refund("a")  # say the 5th attempt succeeded: it does not count
    assert await backoff.reserve("a") == 0  # and the next goes at once (the 5th again: 2 s)
    assert await backoff.reserve("a") == 2.0
    clock.advance(2.0 + POLICY.forget_s)  # quiet for `forget_s` after the wait: start over
    assert [await backoff.reserve("a") for _ in range(2)] == [0, 0]


@pytest.mark.asyncio
async def test_memory_backoff_forgets_quiet_addresses() -> None:
    clock = Clock()
    backoff = MemoryBackoff(POLICY, clock)
    for i in range(3000):
        await backoff.reserve(f"ip{i}")
        clock.advance(0.1)
    assert len(backoff) < 1200  # swept: only the last 30 s are remembered


@pytest_asyncio.fixture
async def redis_backoff(redis_url: str) -> AsyncIterator[Backoff]:
    limiter = RedisLimiter(redis_url, prefix=f"test:{uuid.uuid4().hex}:")
    try:
        yield RedisBackoff(limiter.redis, BackoffPolicy(2, 0.2, 0.8, 5.0), limiter.prefix)
    finally:
        await limiter.close()


@pytest.mark.asyncio
async def test_redis_backoff_is_the_same_in_real_time(redis_backoff: Backoff) -> None:
    backoff = redis_backoff
    assert await asyncio.gather(*(backoff.reserve("a") for _ in range(3))) == [0, 0, 0]
    wait = await backoff.reserve("a")
    assert 0.1 < wait <= 0.2
    await asyncio.sleep(wait + 0.01)
    assert await backoff.reserve("a") == 0  # the 4th: now 0.4 s
    assert 0.3 < await backoff.reserve("a") <= 0.4
    await backoff.refund("a")
    assert await backoff.reserve("a") == 0
    # many concurrent attempts: only the free ones go ahead
    results = await asyncio.gather(*(backoff.reserve("b") for _ in range(50)))
    assert sum(1 for wait in results if wait == 0) == 3
