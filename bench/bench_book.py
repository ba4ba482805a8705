"""Order-book apply rate on one core: `quantsaas.book.L2Book` vs a naive dict-and-sort book.

    .venv/bin/python bench/bench_book.py [--quick] [--deltas N] [--repeats R]

Workload (pre-generated, so generation is not timed): one instrument, a book that starts at
about 120 levels per side, and a stream of deltas of 1-3 changed levels each (absolute sizes,
zero deletes): about 80% size updates of existing levels (rank from the top drawn from an
exponential with mean 4, so mostly near the top), 10% inserts of new levels at an exponential
distance (mean half the depth) from the opposite best price (so also inside the spread) and 10%
deletes (also mostly near the top). The insert/delete odds lean toward a depth that wanders
slowly between about 55 and 195 levels per side (the printed min/mean/max is what it did).
Every delta keeps the book uncrossed, so no variant raises.

Variants, each timed over the whole stream from the same starting snapshot, interleaved, best
and median of `--repeats` runs:
* ours.delta+top: `L2Book.apply_delta(BookDelta)` then `best_bid()` and `best_ask()` after every
  delta (what a ticker or a market-data read needs);
* ours.delta: `L2Book.apply_delta(BookDelta)` only (validation, crossed check, counters);
* ours.levels: the book's raw level application (`L2Book._update_side` on both sides), no
  BookDelta object, no crossed check: the floor of what apply_delta costs;
* naive+top: the baseline, a dict per side updated per level, and `sorted()` of each side's
  prices for the best bid and best ask after every delta (plus the same crossed check).

Figures are deltas/s (one delta = one BookDelta of 1-3 levels) and level updates/s (sum of the
levels in those deltas); ratios ours/naive are on the same stream in the same process.
Correctness: both books are compared after every delta (best bid/ask, untimed pass) and level
by level at the end. Target: >= 500,000 deltas/s for ours.delta+top on one core.
"""

from __future__ import annotations

import argparse
import bisect
import gc
import math
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import benchlib
from quantsaas.book import L2Book
from quantsaas.model import BookDelta, BookSnapshot, Instrument, Level

INSTRUMENT = Instrument(
    venue="bench",
    base="BTC",
    quote="USD",
    native_symbol="BTCUSD",
    price_scale=2,
    size_scale=8,
    tick_size=1,
    lot_size=1,
)
MIN_LEVELS, MAX_LEVELS, START_LEVELS = 50, 200, 120
MID = 6_500_000


@dataclass
class Stream:
    snapshot: BookSnapshot
    deltas: list[BookDelta]
    level_count: int
    inserts: int
    deletes: int
    updates: int
    side_levels: list[int]


def generate(count: int, seed: int = 42) -> Stream:
    rng = random.Random(seed)
    bid_prices = sorted(MID - 1 - k - rng.randint(0, 1) * (k // 3) for k in range(START_LEVELS))
    bid_prices = sorted(set(bid_prices))
    ask_prices = sorted({MID + 1 + k + rng.randint(0, 1) * (k // 3) for k in range(START_LEVELS)})

    def size() -> int:
        return rng.randint(1, 50_000) * 10_000

    bids = {price: size() for price in bid_prices}
    asks = {price: size() for price in ask_prices}
    snapshot = BookSnapshot(
        INSTRUMENT,
        tuple((p, bids[p]) for p in reversed(bid_prices)),
        tuple((p, asks[p]) for p in ask_prices),
        1,
        1,
        1,
    )

    def rank(n: int) -> int:
        return min(int(rng.expovariate(0.25)), n - 1)

    wave = max(count / 3, 1000)
    deltas: list[BookDelta] = []
    inserts = deletes = updates = levels = 0
    side_levels: list[int] = []
    for sequence in range(2, count + 2):
        changed: dict[bool, dict[int, int]] = {True: {}, False: {}}
        for _ in range(rng.randint(1, 3)):
            is_bid = rng.random() < 0.5
            prices = bid_prices if is_bid else ask_prices
            book = bids if is_bid else asks
            n = len(prices)
            # 10% inserts and 10% deletes on average, leaning toward a depth that wanders
            # slowly between about 55 and 195 levels per side
            target = 125 + 70 * math.sin(2 * math.pi * sequence / wave)
            p_insert = 0.1 * min(3.0, (target / n) ** 2)
            p_delete = 0.1 * min(3.0, (n / target) ** 2)
            draw = rng.random() * (0.8 + p_insert + p_delete)
            if draw < p_insert and n < MAX_LEVELS:
                # insert a new level, mostly near the top, never crossing
                for _ in range(8):
                    distance = int(rng.expovariate(2.0 / n))
                    if is_bid:
                        price = ask_prices[0] - 1 - distance
                    else:
                        price = bid_prices[-1] + 1 + distance
                    if price not in book and price not in changed[is_bid]:
                        break
                else:
                    continue
                book[price] = new = size()
                bisect.insort(prices, price)
                inserts += 1
            elif draw < p_insert + p_delete and n > MIN_LEVELS:
                r = rank(n)
                price = prices[-1 - r] if is_bid else prices[r]
                if price in changed[is_bid]:
                    continue
                del book[price]
                del prices[bisect.bisect_left(prices, price)]
                new = 0
                deletes += 1
            else:
                r = rank(n)
                price = prices[-1 - r] if is_bid else prices[r]
                if price in changed[is_bid]:
                    continue
                book[price] = new = size()
                updates += 1
            changed[is_bid][price] = new
        if not changed[True] and not changed[False]:
            price = bid_prices[-1]
            bids[price] = changed[True][price] = size()
            updates += 1
        delta = BookDelta(
            INSTRUMENT,
            tuple(changed[True].items()),
            tuple(changed[False].items()),
            sequence,
            sequence,
            sequence,
        )
        levels += len(delta.bids) + len(delta.asks)
        deltas.append(delta)
        side_levels.append(len(bid_prices))
        side_levels.append(len(ask_prices))
    return Stream(snapshot, deltas, levels, inserts, deletes, updates, side_levels)


class NaiveBook:
    """A dict per side; best bid/ask found by sorting the prices on every query."""

    def __init__(self, snapshot: BookSnapshot) -> None:
        self.bids: dict[int, int] = dict(snapshot.bids)
        self.asks: dict[int, int] = dict(snapshot.asks)

    def apply(self, bids: tuple[Level, ...], asks: tuple[Level, ...]) -> None:
        for side, changes in ((self.bids, bids), (self.asks, asks)):
            for price, size in changes:
                if size:
                    side[price] = size
                else:
                    side.pop(price, None)

    def best_bid(self) -> Level:
        price = sorted(self.bids)[-1]
        return (price, self.bids[price])

    def best_ask(self) -> Level:
        price = sorted(self.asks)[0]
        return (price, self.asks[price])


def fresh_ours(stream: Stream) -> L2Book:
    book = L2Book(INSTRUMENT)
    book.apply_snapshot(stream.snapshot)
    return book


def run_ours_top(stream: Stream) -> float:
    book = fresh_ours(stream)
    apply, best_bid, best_ask = book.apply_delta, book.best_bid, book.best_ask
    deltas = stream.deltas
    start = time.perf_counter()
    for delta in deltas:
        apply(delta)
        best_bid()
        best_ask()
    return time.perf_counter() - start


def run_ours_delta(stream: Stream) -> float:
    book = fresh_ours(stream)
    apply = book.apply_delta
    deltas = stream.deltas
    start = time.perf_counter()
    for delta in deltas:
        apply(delta)
    return time.perf_counter() - start


def run_ours_levels(stream: Stream) -> float:
    book = fresh_ours(stream)
    update = L2Book._update_side
    bids, asks = book._bids, book._asks
    bid_prices, ask_prices = book._bid_prices, book._ask_prices
    pairs = [(delta.bids, delta.asks) for delta in stream.deltas]
    start = time.perf_counter()
    for delta_bids, delta_asks in pairs:
        update(bids, bid_prices, delta_bids)
        update(asks, ask_prices, delta_asks)
    return time.perf_counter() - start


def run_naive_top(stream: Stream) -> float:
    book = NaiveBook(stream.snapshot)
    apply, best_bid, best_ask = book.apply, book.best_bid, book.best_ask
    pairs = [(delta.bids, delta.asks) for delta in stream.deltas]
    start = time.perf_counter()
    for delta_bids, delta_asks in pairs:
        apply(delta_bids, delta_asks)
        if best_bid()[0] >= best_ask()[0]:
            raise AssertionError("crossed")
    return time.perf_counter() - start


VARIANTS: dict[str, Callable[[Stream], float]] = {
    "ours.delta+top": run_ours_top,
    "ours.delta": run_ours_delta,
    "ours.levels": run_ours_levels,
    "naive+top": run_naive_top,
}


def verify(stream: Stream) -> None:
    ours = fresh_ours(stream)
    naive = NaiveBook(stream.snapshot)
    for index, delta in enumerate(stream.deltas):
        ours.apply_delta(delta)
        naive.apply(delta.bids, delta.asks)
        if ours.best_bid() != naive.best_bid() or ours.best_ask() != naive.best_ask():
            raise AssertionError(f"books differ at the top after delta {index}")
    naive_bids = [(p, naive.bids[p]) for p in sorted(naive.bids, reverse=True)]
    naive_asks = [(p, naive.asks[p]) for p in sorted(naive.asks)]
    if ours.bids() != naive_bids or ours.asks() != naive_asks:
        raise AssertionError("books differ at the end")
    if ours.version != len(stream.deltas) + 1 or not ours.valid:
        raise AssertionError("unexpected version or validity")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--deltas", type=int)
    parser.add_argument("--repeats", type=int)
    opts = parser.parse_args()
    count = opts.deltas or (100_000 if opts.quick else 300_000)
    repeats = opts.repeats or (3 if opts.quick else 7)

    print(f"bench_book: {benchlib.machine_load()}")
    started = time.perf_counter()
    stream = generate(count)
    levels = stream.side_levels
    print(
        f"stream: {len(stream.deltas):,} deltas, {stream.level_count:,} level updates "
        f"({stream.level_count / len(stream.deltas):.2f}/delta: {stream.updates:,} size updates, "
        f"{stream.inserts:,} inserts, {stream.deletes:,} deletes); levels per side "
        f"min {min(levels)} mean {statistics.fmean(levels):.0f} max {max(levels)} "
        f"(generated in {time.perf_counter() - started:.1f} s, untimed)"
    )
    verify(stream)
    print("verified: both books agree at the top after every delta and level by level at the end")

    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    gc.collect()
    for _ in range(repeats):
        for name, run in VARIANTS.items():
            times[name].append(run(stream))

    n_deltas, n_levels = len(stream.deltas), stream.level_count
    print(f"\n{'variant':<16}{'best deltas/s':>16}{'median deltas/s':>18}{'best levels/s':>16}")
    best: dict[str, float] = {}
    for name, samples in times.items():
        best[name] = n_deltas / min(samples)
        median = n_deltas / statistics.median(samples)
        print(f"{name:<16}{best[name]:>16,.0f}{median:>18,.0f}{n_levels / min(samples):>16,.0f}")

    naive = best["naive+top"]
    print("\nratios (best of runs, same process):")
    for name in ("ours.delta+top", "ours.delta", "ours.levels"):
        print(f"  {name:<16} / naive+top = {best[name] / naive:5.2f}")
    ours = best["ours.delta+top"]
    print(
        f"  apply_delta overhead over raw levels: {best['ours.levels'] / best['ours.delta']:.2f}x"
    )
    verdict = "MET" if ours >= 500_000 else "MISSED"
    print(f"\ntarget >= 500,000 deltas/s (ours.delta+top, one core): {ours:,.0f} -> {verdict}")
    print(f"({time.perf_counter() - started:.0f} s; {benchlib.machine_load()})")


if __name__ == "__main__":
    main()
