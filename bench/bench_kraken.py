"""Kraken book throughput with CRC32 verification, and consolidated-BBO latency, with baselines.

Frames:
* recorded: the 289 checksummed v1 XBT/CHF updates (depth 1000) and the v2 ETH/USD frames from
  tests/feeds/samples, looped (the book is reset to the snapshot between loops, untimed);
* synthetic v2 depth 10: update frames written by the fake Kraken's own code (fixed-precision
  numbers, correct checksums) from the simulator, generated before timing.

Ours, per frame: raw bytes -> parser (msgspec typed decoding, numbers kept as their exact
text: v2 book frames and v1 book updates, the levels straight into structs) -> text-exact
`KrakenBook` (checked levels, truncate to depth, CRC32 over the top 10, BookDelta out).
Measured with verification on and off (the difference is the checksum's cost), beside the
checksum of an unchanged book (cached). Baseline, same frames, same run: `json.loads` +
Decimal + one plain dict per side, zero deletes (no truncation, no checksum, no events). CPU
time of this process; `--rounds` interleaved rounds, medians (and the lowest round).

Consolidated BBO: an Engine with 4 venue feeds and the consolidated service installed; each
timed call is one venue's book delta through `Engine.on_event` (book apply, publish, BBO
recompute over 4 venues and its publish when it changed); p50/p99 in µs, beside the same call
without the consolidated service (the per-event overhead is the difference).

`--quick` is a smoke test.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from benchlib import percentile
from quantsaas.book.consolidated import QuoteEquivalence
from quantsaas.book.consolidated_live import INPUTS as CONSOLIDATED_INPUTS
from quantsaas.book.consolidated_live import ConsolidatedConfig, ConsolidatedService
from quantsaas.bus import Bus
from quantsaas.engine import Engine
from quantsaas.fakes.kraken import FakeKraken, KrakenClient, KrakenFakeConfig
from quantsaas.feeds.base import EventSink, Feed
from quantsaas.feeds.kraken import parse
from quantsaas.feeds.kraken.book import KrakenBook
from quantsaas.feeds.kraken.v1 import V1Book, parse_v1, parse_v1_frame
from quantsaas.model import BookDelta, BookSnapshot, Instrument

SAMPLES = Path(__file__).resolve().parents[1] / "tests" / "feeds" / "samples"
CLOCK = time.process_time
"""CPU time of this process: on a shared machine, time spent descheduled is not ours."""


def baseline(frames: list[bytes]) -> float:
    """json.loads + Decimal + dict per side: what a minimal client does."""
    bids: dict[Decimal, Decimal] = {}
    asks: dict[Decimal, Decimal] = {}
    began = CLOCK()
    for raw in frames:
        message = json.loads(raw)
        payloads = message["data"] if isinstance(message, dict) else message[1:-2]
        for entry in payloads:
            for key, side in (("bids", bids), ("asks", asks), ("b", bids), ("a", asks)):
                for row in entry.get(key, ()):
                    price, qty = (row["price"], row["qty"]) if isinstance(row, dict) else row[:2]
                    if Decimal(str(qty)) == 0:
                        side.pop(Decimal(str(price)), None)
                    else:
                        side[Decimal(str(price))] = Decimal(str(qty))
    return len(frames) / (CLOCK() - began)


def recorded_v1(loops: int) -> tuple[list[bytes], Callable[[bool], float]]:
    lines = [x for x in (SAMPLES / "kraken_v1_book.jsonl").read_bytes().splitlines() if x.strip()]
    (chf,) = parse.kraken_instruments(["XBT/CHF"])
    snap = parse_v1(json.loads(lines[2]), 0)
    assert isinstance(snap, V1Book)
    updates = lines[3:] * loops

    def run(verify: bool) -> float:
        elapsed = 0.0
        for start in range(0, len(updates), 289):
            book = KrakenBook(chf, 1000, verify)
            book.on_snapshot(snap.update, 0)
            began = CLOCK()
            for raw in updates[start : start + 289]:
                item = parse_v1_frame(raw, 0)
                assert isinstance(item, V1Book)
                book.on_update(item.update, 0)
            elapsed += CLOCK() - began
        return len(updates) / elapsed

    return updates, run


def synthetic_v2(count: int) -> tuple[list[bytes], bytes, Instrument]:
    fake = FakeKraken(KrakenFakeConfig(symbols=("BTC/USD",), rate=400))
    client = KrakenClient(None)  # type: ignore[arg-type]  # frames only, never sent
    client.books["BTC/USD"] = 10
    fake.market.advance(1.0)
    snapshot = fake._book_frame(client, "BTC/USD", snapshot=True)
    assert snapshot is not None
    frames: list[bytes] = []
    while len(frames) < count:
        fake.market.advance(0.01)
        frame = fake._book_frame(client, "BTC/USD", snapshot=False)
        if frame:
            frames.append(frame.encode())
    (btc,) = parse.kraken_instruments(["BTC/USD"])
    return frames, snapshot.encode(), btc


def ours_v2(frames: list[bytes], snapshot: bytes, inst: Instrument, verify: bool) -> float:
    instruments = {inst.native_symbol: inst}
    book = KrakenBook(inst, 10, verify)
    (snap,) = parse.parse_frame(snapshot, instruments, 0)
    assert isinstance(snap, parse.BookMessage)
    book.on_snapshot(snap.update, 0)
    began = CLOCK()
    for raw in frames:
        for item in parse.parse_frame(raw, instruments, 0):
            assert isinstance(item, parse.BookMessage)
            book.on_update(item.update, 0)
    return len(frames) / (CLOCK() - began)


def checksum_cost(frames: list[bytes], snapshot: bytes, inst: Instrument, n: int) -> float:
    book = KrakenBook(inst, 10)
    (snap,) = parse.parse_frame(snapshot, {inst.native_symbol: inst}, 0)
    assert isinstance(snap, parse.BookMessage)
    book.on_snapshot(snap.update, 0)
    began = CLOCK()
    for _ in range(n):
        book.checksum()
    return (CLOCK() - began) / n * 1e6


class _Idle(Feed):
    def __init__(self, instrument: Instrument) -> None:
        super().__init__([instrument])
        self.venue = instrument.venue

    async def run(self, sink: EventSink) -> None:  # pragma: no cover - never run
        raise NotImplementedError

    def request_resync(self, instrument: Instrument, reason: str) -> None:
        pass


def bbo_latency(events: int, consolidated: bool) -> list[float]:
    venues = ("kraken", "coinbase", "binance", "sim")
    instruments = [Instrument(v, "BTC", "USD", "BTC-USD", 8, 8, 1, 1) for v in venues]
    bus = Bus()
    engine = Engine([_Idle(inst) for inst in instruments], bus.publish)
    if consolidated:  # wired as the composition root does
        config = ConsolidatedConfig(QuoteEquivalence())
        service = ConsolidatedService(engine.books.values(), bus.publish, config)
        bus.consume("consolidated", CONSOLIDATED_INPUTS, service.on_envelope)
    rng = random.Random(5)
    mid = 60_000 * 10**8
    for inst in instruments:
        bids = tuple((mid - (k + 1) * 10**8, 10**8) for k in range(50))
        asks = tuple((mid + (k + 1) * 10**8, 10**8) for k in range(50))
        engine.on_event(BookSnapshot(inst, bids, asks, 1, 0, 0))
    timings = []
    for n in range(events):
        inst = instruments[n % 4]
        k = rng.randint(1, 50)
        size = rng.randint(0, 3) * 10**8
        delta = (
            BookDelta(inst, ((mid - k * 10**8, size),), (), n + 2, n, n)
            if n % 2
            else BookDelta(inst, (), ((mid + k * 10**8, size),), n + 2, n, n)
        )
        began = time.perf_counter_ns()
        engine.on_event(delta)
        timings.append((time.perf_counter_ns() - began) / 1000)
    return sorted(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (median kept)")
    args = parser.parse_args()
    loops = 3 if args.quick else 40
    count = 2_000 if args.quick else 30_000
    results: dict[str, Any] = {}

    rounds = 1 if args.quick else args.rounds
    updates, run_v1 = recorded_v1(loops)
    v1 = [(run_v1(True), run_v1(False), baseline(updates)) for _ in range(rounds)]
    on = statistics.median(r[0] for r in v1)
    off = statistics.median(r[1] for r in v1)
    base = statistics.median(r[2] for r in v1)
    results["recorded_v1_depth1000"] = {
        "frames": len(updates),
        "rounds": rounds,
        "ours_frames_per_s": round(on),
        "ours_no_checksum_frames_per_s": round(off),
        "baseline_json_dict_frames_per_s": round(base),
        "ratio_ours_vs_baseline": round(statistics.median(r[0] / r[2] for r in v1), 2),
        "ratio_lowest_round": round(min(r[0] / r[2] for r in v1), 2),
    }
    frames, snapshot, btc = synthetic_v2(count)
    v2 = [
        (
            ours_v2(frames, snapshot, btc, True),
            ours_v2(frames, snapshot, btc, False),
            baseline(frames),
        )
        for _ in range(rounds)
    ]
    on = statistics.median(r[0] for r in v2)
    off = statistics.median(r[1] for r in v2)
    base = statistics.median(r[2] for r in v2)
    results["synthetic_v2_depth10"] = {
        "frames": len(frames),
        "rounds": rounds,
        "ours_updates_per_s": round(on),
        "ours_best_round_updates_per_s": round(max(r[0] for r in v2)),
        "ours_no_checksum_updates_per_s": round(off),
        "checksum_share_of_update_cost": round(1 - on / off if off > on else 0.0, 3),
        "checksum_us_per_book_unchanged": round(checksum_cost(frames, snapshot, btc, 20_000), 2),
        "baseline_json_dict_updates_per_s": round(base),
        "ratio_ours_vs_baseline": round(statistics.median(r[0] / r[2] for r in v2), 2),
        "ours_lowest_round_updates_per_s": round(min(r[0] for r in v2)),
        "target_updates_per_s": 100_000,
    }
    events = 5_000 if args.quick else 100_000
    with_c = bbo_latency(events, True)
    without = bbo_latency(events, False)
    results["consolidated_bbo_4_venues"] = {
        "events": events,
        "engine_event_with_consolidated_us": {
            "p50": round(percentile(with_c, 50), 2),
            "p99": round(percentile(with_c, 99), 2),
        },
        "engine_event_without_us": {
            "p50": round(percentile(without, 50), 2),
            "p99": round(percentile(without, 99), 2),
        },
        "target_p99_us": 50,
    }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
