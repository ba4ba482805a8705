"""Market-simulator generation speed on one core, against a bare loop of the same random draws.

    .venv/bin/python bench/bench_simulator.py [--quick] [--rate R] [--seconds S] [--repeats N]

1. Generation, per symbol: `MarketSimulator.run_until` over S simulated seconds at R order-flow
   events per second (default 10,000/s, the top rate the service must sustain). Figures are
   order-flow events (one BookDelta each) and messages (deltas + trades + tickers) per CPU
   second, best of N runs.
2. Baseline, measured in the same run: the same numbers of `random()`, `gauss()` and
   `expovariate()` draws as the simulator made for those events (counted on an identical
   simulator), in a bare loop with no book work. `x bare` is simulator time / baseline time, a
   machine-independent cost figure: how many times the bare draws the whole simulation costs.
3. Real time: `SimulatorFeed` with the four symbols at R events/s each for a few wall seconds
   into a counting sink (the feed's own work: batching, stats, sink calls); reported as the CPU
   share of one core and the events delivered versus the events due.

Target: >= 40,000 events/s in total on one core, i.e. four symbols at 10,000/s in real time.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import time
from dataclasses import dataclass

import benchlib
from quantsaas.feeds.base import BooksStale
from quantsaas.feeds.simulator import MarketSimulator, SimConfig, SimulatorFeed, sim_spec
from quantsaas.model import BookDelta, MarketEvent

NS = 1_000_000_000
SYMBOLS = ("BTC/USD", "ETH/USD", "SOL/USD", "ADA/USD")


@dataclass
class Draws:
    uniform: int = 0
    gauss: int = 0
    exponential: int = 0


def count_draws(symbol: str, config: SimConfig, sim_ns: int) -> tuple[Draws, int]:
    """Random draws and order-flow events of one run (wraps the simulator's bound draws)."""
    sim = MarketSimulator(sim_spec(symbol), config)
    draws = Draws()
    uniform, gauss, exponential = sim._random, sim._gauss, sim._expovariate

    def counted_uniform() -> float:
        draws.uniform += 1
        return uniform()

    def counted_gauss(mu: float = 0.0, sigma: float = 1.0) -> float:
        draws.gauss += 1
        return gauss(mu, sigma)

    def counted_exponential(lambd: float = 1.0) -> float:
        draws.exponential += 1
        return exponential(lambd)

    sim._random, sim._gauss, sim._expovariate = counted_uniform, counted_gauss, counted_exponential
    events = sim.run_until(sim_ns)
    return draws, sum(isinstance(event, BookDelta) for event in events)


def time_simulation(symbol: str, config: SimConfig, sim_ns: int) -> tuple[float, int, int]:
    """(CPU seconds, order-flow events, messages) of one run_until from a fresh simulator."""
    sim = MarketSimulator(sim_spec(symbol), config)
    started = time.process_time()
    events = sim.run_until(sim_ns)
    elapsed = time.process_time() - started
    return elapsed, sum(isinstance(event, BookDelta) for event in events), len(events)


def time_bare_draws(draws: Draws, rate_per_ns: float) -> float:
    rng = random.Random(1)
    uniform, gauss, exponential = rng.random, rng.gauss, rng.expovariate
    started = time.process_time()
    for _ in range(draws.exponential):
        exponential(rate_per_ns)
    for _ in range(draws.gauss):
        gauss()
    for _ in range(draws.uniform):
        uniform()
    return time.process_time() - started


async def run_feed(config: SimConfig, seconds: float) -> tuple[int, int, float, float]:
    """(messages, deltas, wall s, CPU s) of the real-time feed with a counting sink."""
    feed = SimulatorFeed(None, config)
    counts = [0, 0]

    def sink(event: MarketEvent | BooksStale) -> None:
        counts[0] += 1
        if type(event) is BookDelta:
            counts[1] += 1

    wall, cpu = time.perf_counter(), time.process_time()
    task = asyncio.create_task(feed.run(sink))
    await asyncio.sleep(seconds)
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    return counts[0], counts[1], time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=10_000.0, help="events/s per symbol")
    parser.add_argument("--seconds", type=float, default=5.0, help="simulated s per symbol")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="1 simulated s, 1 repeat, 1 s feed")
    args = parser.parse_args()
    seconds, repeats, feed_seconds = args.seconds, args.repeats, 3.0
    if args.quick:
        seconds, repeats, feed_seconds = 1.0, 1, 1.0
    config = SimConfig(events_per_second=args.rate)
    sim_ns = round(seconds * NS)
    print(benchlib.machine_load())
    print(f"{args.rate:,.0f} events/s per symbol, {seconds:g} simulated s, best of {repeats}\n")
    header = f"{'symbol':<8} {'events/s':>10} {'messages/s':>11} {'draws/event':>12}"
    print(f"{header} {'bare events/s':>14} {'x bare':>7}")
    total_events = total_time = total_bare = 0.0
    for symbol in SYMBOLS:
        draws, counted = count_draws(symbol, config, sim_ns)
        cpu = math.inf
        bare = math.inf
        for _ in range(repeats):
            elapsed, events, messages = time_simulation(symbol, config, sim_ns)
            cpu = min(cpu, elapsed)
            assert events == counted, "the counted run must be the timed run"
            bare = min(bare, time_bare_draws(draws, args.rate / NS))
        total_events += events
        total_time += cpu
        total_bare += bare
        per_event = (draws.uniform + draws.gauss + draws.exponential) / events
        print(
            f"{symbol:<8} {events / cpu:>10,.0f} {messages / cpu:>11,.0f} {per_event:>12.2f} "
            f"{events / bare:>14,.0f} {cpu / bare:>6.1f}x"
        )
    print(
        f"{'total':<8} {total_events / total_time:>10,.0f} {'':>11} {'':>12} "
        f"{total_events / total_bare:>14,.0f} {total_time / total_bare:>6.1f}x"
    )
    rate = total_events / total_time
    verdict = "meets" if rate >= 40_000 else "MISSES"
    print(f"\none core generates {rate:,.0f} events/s: {verdict} the 40,000 events/s target")

    messages, deltas, wall, cpu = asyncio.run(run_feed(config, feed_seconds))
    due = args.rate * len(SYMBOLS) * wall
    print(
        f"real-time feed, {len(SYMBOLS)} symbols x {args.rate:,.0f}/s for {wall:.1f} s: "
        f"{deltas:,} deltas ({deltas / due:.0%} of due), {messages / wall:,.0f} messages/s, "
        f"{cpu / wall:.0%} of one core"
    )


if __name__ == "__main__":
    main()
