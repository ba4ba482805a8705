"""Shared helpers of the benchmarks in bench/ (not a benchmark itself).

* `bench_instruments()`: four `model.Instrument`s (BTC/USD, ETH/USD, SOL/USD, ADA/USD) on the
  venue `bench`.
* `EventSource`: a deterministic generator of valid market events (book deltas of 1-3 levels
  near the top of a fixed-mid book, trades, tickers), with `ts_recv = time.time_ns()` at emission.
* `BenchFeed`: a `Feed` that publishes `EventSource` events at a controlled total rate (settable
  while running), so the benchmarks do not depend on the simulator.
* `pace()`: the rate controller shared by `BenchFeed` and the bare-websockets baseline server.
* Process helpers: CPU time and RSS from /proc, percentiles, the fd limit, machine load.
"""

from __future__ import annotations

import asyncio
import os
import random
import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from quantsaas.feeds.base import EventSink, Feed, FeedState
from quantsaas.model import (
    BookDelta,
    BookSnapshot,
    Instrument,
    Level,
    MarketEvent,
    Side,
    Ticker,
    Trade,
)

VENUE = "bench"
BOOK_LEVELS = 100
"""Levels per side of every bench book."""


def bench_instruments() -> tuple[Instrument, ...]:
    def make(base: str, price_scale: int, size_scale: int) -> Instrument:
        return Instrument(
            venue=VENUE,
            base=base,
            quote="USD",
            native_symbol=f"{base}USD",
            price_scale=price_scale,
            size_scale=size_scale,
            tick_size=1,
            lot_size=1,
        )

    return (make("BTC", 2, 8), make("ETH", 2, 8), make("SOL", 3, 6), make("ADA", 5, 2))


_MIDS = {"BTC/USD": 6_500_000, "ETH/USD": 340_000, "SOL/USD": 150_000, "ADA/USD": 45_000}
"""Raw mid prices, away from the grid so bids are mid-k and asks mid+k (k >= 1)."""


class _Mirror:
    """The generator's own view of one book: level k (1..BOOK_LEVELS) on each side of a fixed mid.

    Since every bid is below `mid` and every ask above it, no delta can cross the book.
    """

    def __init__(self, instrument: Instrument, rng: random.Random) -> None:
        self.instrument = instrument
        self.mid = _MIDS.get(instrument.symbol, 100_000)
        self.rng = rng
        self.bids = [0] + [rng.randint(1, 5_000) * 1000 for _ in range(BOOK_LEVELS)]
        self.asks = [0] + [rng.randint(1, 5_000) * 1000 for _ in range(BOOK_LEVELS)]
        self.sequence = 0
        self.trades = 0
        self.last = self.mid

    def snapshot(self, ts: int) -> BookSnapshot:
        self.sequence += 1
        mid = self.mid
        bids = tuple((mid - k, s) for k, s in enumerate(self.bids) if k and s)
        asks = tuple((mid + k, s) for k, s in enumerate(self.asks) if k and s)
        return BookSnapshot(self.instrument, bids, asks, self.sequence, ts, ts)

    def delta(self, ts: int) -> BookDelta:
        rng = self.rng
        bids: list[Level] = []
        asks: list[Level] = []
        for _ in range(rng.randint(1, 3)):
            is_bid = rng.random() < 0.5
            k = 1 + min(int(rng.expovariate(0.25)), BOOK_LEVELS - 1)
            side = self.bids if is_bid else self.asks
            # mostly size updates; deep levels are sometimes removed (and come back later)
            size = 0 if k > 3 and rng.random() < 0.1 else rng.randint(1, 5_000) * 1000
            side[k] = size
            if is_bid:
                bids.append((self.mid - k, size))
            else:
                asks.append((self.mid + k, size))
        self.sequence += 1
        return BookDelta(self.instrument, tuple(bids), tuple(asks), self.sequence, ts, ts)

    def trade(self, ts: int) -> Trade:
        self.trades += 1
        buy = self.rng.random() < 0.5
        price = self.mid + 1 if buy else self.mid - 1
        self.last = price
        size = self.rng.randint(1, 2_000) * 1000
        side = Side.BUY if buy else Side.SELL
        return Trade(self.instrument, price, size, side, str(self.trades), ts, ts)

    def ticker(self, ts: int) -> Ticker:
        bid_k = next((k for k in range(1, BOOK_LEVELS + 1) if self.bids[k]), 1)
        ask_k = next((k for k in range(1, BOOK_LEVELS + 1) if self.asks[k]), 1)
        return Ticker(
            self.instrument,
            self.mid - bid_k,
            self.bids[bid_k],
            self.mid + ask_k,
            self.asks[ask_k],
            self.last,
            None,
            ts,
            ts,
        )


class EventSource:
    """Round-robin over the instruments; 55% book deltas, 35% trades, 10% tickers."""

    def __init__(self, instruments: Sequence[Instrument], seed: int = 1) -> None:
        rng = random.Random(seed)
        self.mirrors = [_Mirror(instrument, rng) for instrument in instruments]
        self._by_key = {m.instrument.key: m for m in self.mirrors}
        self._rng = rng
        self._turn = 0

    def snapshots(self) -> list[BookSnapshot]:
        ts = time.time_ns()
        return [mirror.snapshot(ts) for mirror in self.mirrors]

    def snapshot_of(self, instrument: Instrument) -> BookSnapshot:
        return self._by_key[instrument.key].snapshot(time.time_ns())

    def next(self) -> MarketEvent:
        mirror = self.mirrors[self._turn]
        self._turn = (self._turn + 1) % len(self.mirrors)
        draw = self._rng.random()
        ts = time.time_ns()
        if draw < 0.55:
            return mirror.delta(ts)
        if draw < 0.90:
            return mirror.trade(ts)
        return mirror.ticker(ts)


@dataclass
class PaceStats:
    emitted: int = 0
    skipped: int = 0
    """Events not emitted because the loop fell more than `max_behind_s` behind schedule."""


async def pace(
    get_rate: Callable[[], float],
    emit: Callable[[], None],
    stats: PaceStats,
    max_behind_s: float = 0.05,
) -> None:
    """Call `emit` `get_rate()` times per second, evenly spaced, until cancelled.

    A late loop emits the events that fell due in a burst, up to `max_behind_s` worth; older
    ones are skipped (counted), so an overloaded server shows up as published < offered.
    """
    rate = get_rate()
    start = time.monotonic()
    done = 0
    while True:
        current = get_rate()
        now = time.monotonic()
        if current != rate:
            rate, start, done = current, now, 0
        if rate <= 0:
            await asyncio.sleep(0.01)
            continue
        due = int((now - start) * rate) - done
        if due > rate * max_behind_s + 1:
            keep = int(rate * max_behind_s) + 1
            stats.skipped += due - keep
            done += due - keep
            due = keep
        for _ in range(due):
            emit()
        stats.emitted += due
        done += due
        wait = (done + 1) / rate - (time.monotonic() - start)
        await asyncio.sleep(max(wait, 0.0))


class BenchFeed(Feed):
    """A benchmark-only feed: snapshots first, then `rate` events per second in total."""

    venue = VENUE

    def __init__(self, instruments: Sequence[Instrument], rate: float, seed: int = 1) -> None:
        super().__init__(instruments)
        self.rate = rate
        self.source = EventSource(instruments, seed)
        self.pace_stats = PaceStats()
        self._resync: list[Instrument] = []

    async def run(self, sink: EventSink) -> None:
        for snapshot in self.source.snapshots():
            sink(snapshot)
        self.stats.state = FeedState.LIVE
        source, stats, resync = self.source, self.stats, self._resync

        def emit() -> None:
            while resync:
                sink(source.snapshot_of(resync.pop()))
            event = source.next()
            stats.record_message(200, event.ts_recv)
            sink(event)

        await pace(lambda: self.rate, emit, self.pace_stats)

    def request_resync(self, instrument: Instrument, reason: str) -> None:
        self._resync.append(instrument)


class LoopLag:
    """Measures event-loop stalls: a task that asks to sleep `tick` s and records the overshoot."""

    def __init__(self, tick: float = 0.005) -> None:
        self.tick = tick
        self.max_s = 0.0
        self.stalls_over_20ms = 0

    def take(self) -> tuple[float, int]:
        """(largest stall, count of stalls over 20 ms) since the last call; resets both."""
        taken = (self.max_s, self.stalls_over_20ms)
        self.max_s, self.stalls_over_20ms = 0.0, 0
        return taken

    async def run(self) -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(self.tick)
            late = time.monotonic() - before - self.tick
            if late > self.max_s:
                self.max_s = late
            if late > 0.02:
                self.stalls_over_20ms += 1


# ---------------------------------------------------------------- process and statistics helpers


def raise_fd_limit(wanted: int = 16_384) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(wanted, hard) if hard != resource.RLIM_INFINITY else wanted
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (and its reaped children excluded)."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    with open("/proc/stat") as handle:
        fields = [int(value) for value in handle.readline().split()[1:]]
    idle = fields[3] + fields[4]
    total = sum(fields[:8])
    return ((total - idle) / _TICKS, total / _TICKS)


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values (q in 0..100); NaN when empty."""
    if not sorted_values:
        return float("nan")
    rank = max(0, min(len(sorted_values) - 1, round(q / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[rank]


def machine_load() -> str:
    one, five, _ = os.getloadavg()
    return f"load avg {one:.2f} (1 min) {five:.2f} (5 min) on {os.cpu_count()} CPUs"
