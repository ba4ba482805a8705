"""Rate limiter cost per hit (µs), memory and Redis backends, each against a baseline.

    .venv/bin/python bench/bench_ratelimit.py [--quick] [--redis-url redis://...]

Memory (`MemoryLimiter`, real monotonic clock), one hit = `await limiter.hit(key, quota)`:
* `hot key`: every hit on one key (1,000,000 per s: always allowed);
* `100k keys`: round-robin over 100,000 distinct keys (60 per 60 s: all allowed and live, so
  the table holds 100k keys);
* `denied`: hits on an exhausted key (the refusal path, nothing stored).
Baseline: an awaited coroutine doing `counts[key] = counts.get(key, 0) + 1` on the same keys,
so both sides pay the same call overhead and the ratio is the cost of GCRA itself.

Redis (`RedisLimiter`: one EVALSHA of the GCRA script per hit), against a redis-server this
script starts on a free port (or `--redis-url`):
* `sequential`: one hit at a time, so µs/hit is a full round trip;
* `64 concurrent`: 64 tasks hitting at once through the client's connection pool (throughput:
  wall time / hits).
Baseline: the same loops doing `INCR` on the same keys through an identically configured client
(a one-command round trip that also writes a key).

Each figure is the median of 5 interleaved repeats (ours, baseline, ours, ...). Ratio = ours /
baseline: how many baseline operations one hit costs. `--quick` is a smoke test.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

from redis.asyncio import Redis

from benchlib import machine_load
from quantsaas.api.ratelimit import REDIS_TIMEOUT_S, MemoryLimiter, Quota, RedisLimiter

REPEATS = 5
CONCURRENCY = 64
HOT = Quota("hot", 1_000_000, 1.0)
"""Earns a unit back every µs, faster than hits come: every timed hit on one key is allowed."""
MANY = Quota("free", 60, 60.0)
"""A tier-like quota: with 100k keys each key is hit a few times per repeat, always allowed,
and stays live (1 s per unit), so the table really holds 100k keys."""
TINY = Quota("tiny", 1, 3600.0)


async def timed(run: Callable[[], Awaitable[int]]) -> float:
    """µs per operation of one call of `run` (which returns how many operations it did)."""
    began = time.perf_counter()
    count = await run()
    return (time.perf_counter() - began) / count * 1e6


async def compare(
    ours: Callable[[], Awaitable[int]], baseline: Callable[[], Awaitable[int]]
) -> tuple[float, float]:
    mine: list[float] = []
    theirs: list[float] = []
    for _ in range(REPEATS):
        mine.append(await timed(ours))
        theirs.append(await timed(baseline))
    return statistics.median(mine), statistics.median(theirs)


def report(label: str, ours_us: float, baseline_us: float) -> None:
    print(f"{label:<28} {ours_us:>10.2f} {baseline_us:>12.2f} {ours_us / baseline_us:>8.2f}")


def header(title: str) -> None:
    print(f"\n{title}")
    print(f"{'':<28} {'ours µs/hit':>10} {'baseline µs':>12} {'ratio':>8}")


async def bench_memory(hits: int, distinct: int) -> None:
    limiter = MemoryLimiter()
    counts: dict[str, int] = {}
    keys = [f"key-{i}" for i in range(distinct)]

    async def count(key: str) -> None:
        counts[key] = counts.get(key, 0) + 1

    def loop_ours(key_list: list[str], quota: Quota) -> Callable[[], Awaitable[int]]:
        async def run() -> int:
            n = len(key_list)
            for i in range(hits):
                await limiter.hit(key_list[i % n], quota)
            return hits

        return run

    def loop_baseline(key_list: list[str]) -> Callable[[], Awaitable[int]]:
        async def run() -> int:
            n = len(key_list)
            for i in range(hits):
                await count(key_list[i % n])
            return hits

        return run

    await limiter.hit("spent", TINY)
    header(f"memory ({hits:,} hits per repeat; baseline: awaited dict update)")
    report("hot key", *await compare(loop_ours(["hot"], HOT), loop_baseline(["hot"])))
    report(f"{distinct // 1000}k keys", *await compare(loop_ours(keys, MANY), loop_baseline(keys)))
    report("denied", *await compare(loop_ours(["spent"], TINY), loop_baseline(["spent"])))
    print(f"keys remembered at the end: {len(limiter):,}")


async def bench_redis(url: str, hits: int) -> None:
    limiter = RedisLimiter(url, prefix="bench:rl:")
    baseline = Redis.from_url(
        url, socket_connect_timeout=REDIS_TIMEOUT_S, socket_timeout=REDIS_TIMEOUT_S
    )
    await limiter.hit("warm", HOT)  # loads the script
    await baseline.ping()

    def sequential(hit: Callable[[str], Awaitable[object]]) -> Callable[[], Awaitable[int]]:
        async def run() -> int:
            for i in range(hits):
                await hit(f"k{i % 100}")
            return hits

        return run

    def concurrent(hit: Callable[[str], Awaitable[object]]) -> Callable[[], Awaitable[int]]:
        per_task = max(1, hits // CONCURRENCY)

        async def worker(task: int) -> None:
            for i in range(per_task):
                await hit(f"k{(task + i) % 100}")

        async def run() -> int:
            await asyncio.gather(*(worker(task) for task in range(CONCURRENCY)))
            return per_task * CONCURRENCY

        return run

    async def ours(key: str) -> object:
        return await limiter.hit(key, HOT)

    async def incr(key: str) -> object:
        return await baseline.incr(f"bench:incr:{key}")

    try:
        header(f"redis ({hits:,} hits per repeat; baseline: INCR round trip)")
        report("sequential", *await compare(sequential(ours), sequential(incr)))
        report(f"{CONCURRENCY} concurrent", *await compare(concurrent(ours), concurrent(incr)))
    finally:
        await limiter.close()
        await baseline.aclose()


@contextmanager
def redis_server() -> Iterator[str]:
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    with tempfile.TemporaryDirectory() as directory, socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        args = ["--port", str(port), "--bind", "127.0.0.1", "--dir", directory, "--save", ""]
        process = subprocess.Popen(
            [binary, *args, "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or process.poll() is not None:
                        raise RuntimeError("redis-server did not start") from None
                    time.sleep(0.05)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            process.kill()
            process.wait()


async def run(args: argparse.Namespace) -> None:
    print(machine_load())
    memory_hits, redis_hits = (20_000, 1_000) if args.quick else (300_000, 10_000)
    await bench_memory(memory_hits, 100_000)
    if args.redis_url:
        await bench_redis(args.redis_url, redis_hits)
    else:
        with redis_server() as url:
            await bench_redis(url, redis_hits)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--redis-url", help="use this Redis instead of starting redis-server")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
