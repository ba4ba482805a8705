"""Venue feed throughput: parse + normalise + book apply on recorded frames, against baselines.

Frames: the 150 recorded Binance `nknusdt@depth@100ms` diffs and the 150 Coinbase Exchange
`l2update`s (tests/feeds/samples), looped (`feed_frames.py`: Binance U/u renumbered per loop so
the update-id checks stay on the normal path).

Ours, per frame: raw bytes -> the venue's feed class, `handle_frame`, as the service runs it
(parser: msgspec typed decoding for depth diffs and l2_data, every number checked and converted
to an exact integer, cached; then the feed's sequence checks: Binance's `DepthSync` U/u bridge,
Coinbase's per-product sequence or Advanced Trade's connection-wide `sequence_num`, and the
book messages numbered) -> `L2Book.apply_delta` (sorted exact book with the crossed-book guard).
Until 2026-12-05 the Coinbase columns timed the parser alone, without the feed's checks.
Our book is reset to the snapshot between loops, outside the timed region: replaying the same
diffs on an already-moved book would cross it, which our guard rejects and cryptofeed's does not
check, so only the recorded sequence itself is timed.

Baselines, same frames, same run:
* `json.loads` + dict: json.loads, Decimal prices/sizes, one plain dict per side, zero deletes
  (what a minimal hand-written client does: no validation, no sorted book, no events);
* the unchecked floor (Advanced column only): the same msgspec decoding, cached number tables,
  `BookDelta` and `L2Book` as ours, with every check of the parser and the feed left out (no
  channel, type or side validation, no sequence or instrument checks, no time-format checks, no
  snapshot wait, no envelope). Not a usable parser: the most a pure-Python feed built from
  these parts could do, so `floor / cryptofeed` bounds what removing Python work can still win;
* cryptofeed, in its own venv (`--cryptofeed-python`, default /tmp/cfvenv/bin/python), through
  its real `message_handler` (bench/cryptofeed_runner.py). cryptofeed 2.4 has no Coinbase
  Exchange feed, so for Coinbase both it and our Advanced Trade parser run on the recorded
  l2updates rewritten as Advanced Trade `l2_data` frames (same levels).

Prints frames/s (CPU time of each process) per interleaved round and the median ratios ours /
baseline. `--quick` is a smoke test. Run with PYTHONPATH=<old checkout>/src for "before".
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec

from feed_frames import advanced_frames, binance_frames, coinbase_frames
from quantsaas.book import L2Book
from quantsaas.feeds.binance.feed import BinanceFeed
from quantsaas.feeds.coinbase.feed import CoinbaseFeed
from quantsaas.feeds.instruments import binance_instruments, coinbase_instruments
from quantsaas.feeds.numbers import codec_for, iso_ns
from quantsaas.model import BookDelta, BookSnapshot

SAMPLES = Path(__file__).resolve().parents[1] / "tests" / "feeds" / "samples"
CLOCK = time.process_time
"""CPU time of this process: on a shared machine, time spent descheduled is not ours (the
cryptofeed runner uses the same clock)."""
PER_LOOP = 149


def _timed_loops(
    frames: list[bytes],
    per_loop: int,
    reset: Callable[[], None],
    run: Callable[[list[bytes]], None],
) -> float:  # noqa: E501
    elapsed = 0.0
    for start in range(0, len(frames), per_loop):
        chunk = frames[start : start + per_loop]
        reset()
        began = CLOCK()
        run(chunk)
        elapsed += CLOCK() - began
    return len(frames) / elapsed


def ours_binance(snapshot: bytes, frames: list[bytes]) -> float:
    (inst,) = binance_instruments(["NKN/USDT"])
    feed, book = BinanceFeed([inst], snapshots=lambda _: snapshot), L2Book(inst)
    (first,) = feed.handle_frame(frames[0], 0)  # buffered, then bridged with the snapshot
    assert isinstance(first, BookSnapshot)
    handle, apply = feed.handle_frame, book.apply_delta

    def run(chunk: list[bytes]) -> None:
        for raw in chunk:
            for delta in handle(raw, 0):
                apply(delta)  # type: ignore[arg-type]

    return _timed_loops(frames[1:], PER_LOOP, lambda: book.apply_snapshot(first), run)


def ours_coinbase(snapshot: bytes, frames: list[bytes], advanced: bool) -> float:
    (inst,) = coinbase_instruments(["SKL-GBP"])
    feed = CoinbaseFeed([inst], api="advanced" if advanced else "exchange")
    book = L2Book(inst)
    (first,) = feed.handle_frame(snapshot, 0)
    assert isinstance(first, BookSnapshot)
    handle, apply = feed.handle_frame, book.apply_delta

    def run(chunk: list[bytes]) -> None:
        for raw in chunk:
            for delta in handle(raw, 0):
                apply(delta)  # type: ignore[arg-type]

    return _timed_loops(frames, 150, lambda: book.apply_snapshot(first), run)


class _BareUpdate(msgspec.Struct, gc=False):
    side: str
    price_level: str
    new_quantity: str


class _BareEvent(msgspec.Struct, gc=False):
    product_id: str
    updates: list[_BareUpdate]


class _BareFrame(msgspec.Struct, gc=False):
    sequence_num: int
    timestamp: str
    events: list[_BareEvent]


def floor_advanced(snapshot: bytes, frames: list[bytes]) -> float:
    """The unchecked floor of the Advanced column (see the module docstring)."""
    (inst,) = coinbase_instruments(["SKL-GBP"])
    feed, book = CoinbaseFeed([inst], api="advanced"), L2Book(inst)
    (first,) = feed.handle_frame(snapshot, 0)
    assert isinstance(first, BookSnapshot)
    decode, apply = msgspec.json.Decoder(_BareFrame).decode, book.apply_delta
    codec = codec_for(inst.price_scale, inst.size_scale)
    prices, sizes = codec.prices, codec.sizes
    instruments = {inst.native_symbol: inst}
    heads: dict[str, int] = {}
    powers = tuple(10 ** (9 - digits) for digits in range(10))

    def run(chunk: list[bytes]) -> None:
        for raw in chunk:
            frame = decode(raw)
            stamp = frame.timestamp
            base = heads.get(stamp[:20])
            if base is None:
                base = heads[stamp[:20]] = iso_ns(stamp[:19] + "Z")
            fraction = stamp[20:-1]
            ts = base + int(fraction) * powers[len(fraction)]
            for event in frame.events:
                bids: list[tuple[int, int]] = []
                asks: list[tuple[int, int]] = []
                for row in event.updates:
                    (bids if row.side == "bid" else asks).append(
                        (prices[row.price_level], sizes[row.new_quantity])
                    )
                delta = BookDelta(
                    instruments[event.product_id],
                    tuple(bids),
                    tuple(asks),
                    frame.sequence_num,
                    ts,
                    0,
                )
                apply(delta)

    return _timed_loops(frames, 150, lambda: book.apply_snapshot(first), run)


def baseline_binance(snapshot: bytes, frames: list[bytes]) -> float:
    snap = json.loads(snapshot)
    bids = {Decimal(p): Decimal(q) for p, q in snap["bids"]}
    asks = {Decimal(p): Decimal(q) for p, q in snap["asks"]}
    began = CLOCK()
    for raw in frames:
        data = json.loads(raw)["data"]
        for side, rows in ((bids, data["b"]), (asks, data["a"])):
            for p, q in rows:
                size = Decimal(q)
                if size == 0:
                    side.pop(Decimal(p), None)
                else:
                    side[Decimal(p)] = size
    return len(frames) / (CLOCK() - began)


def baseline_coinbase(snapshot: bytes, frames: list[bytes]) -> float:
    snap = json.loads(snapshot)
    book = {
        "buy": {Decimal(p): Decimal(q) for p, q in snap["bids"]},
        "sell": {Decimal(p): Decimal(q) for p, q in snap["asks"]},
    }
    began = CLOCK()
    for raw in frames:
        for side, p, q in json.loads(raw)["changes"]:
            size = Decimal(q)
            if size == 0:
                book[side].pop(Decimal(p), None)
            else:
                book[side][Decimal(p)] = size
    return len(frames) / (CLOCK() - began)


def cryptofeed(python: str, loops: int, repeat: int) -> dict[str, Any] | str:
    runner = Path(__file__).with_name("cryptofeed_runner.py")
    if not Path(python).exists():
        return f"no cryptofeed venv at {python}"
    try:
        done = subprocess.run(
            [python, str(runner), str(SAMPLES), str(loops), str(repeat)],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return "cryptofeed runner timed out"
    if done.returncode != 0:
        return f"cryptofeed runner failed: {done.stderr.strip().splitlines()[-1:]}"
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def row(label: str, *values: float | None, fmt: str = ",.0f") -> None:
    cells = "".join(f"{'-' if v is None else format(v, fmt):>18}" for v in values)
    print(f"{label:30}{cells}")


def main() -> None:
    cli = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    cli.add_argument("--loops", type=int, default=200, help="passes over the recorded frames")
    cli.add_argument("--repeat", type=int, default=3, help="runs per measurement (best kept)")
    cli.add_argument("--rounds", type=int, default=5, help="interleaved rounds (median kept)")
    cli.add_argument("--cryptofeed-python", default="/tmp/cfvenv/bin/python")
    cli.add_argument("--quick", action="store_true", help="20 loops, 1 run, 1 round (smoke)")
    args = cli.parse_args()
    loops, repeat = (20, 1) if args.quick else (args.loops, args.repeat)
    rounds = 1 if args.quick else args.rounds
    b_snap, b_frames = binance_frames(SAMPLES, loops)
    c_snap, c_frames = coinbase_frames(SAMPLES, loops)
    a_snap, a_frames = advanced_frames(SAMPLES, loops)
    print(f"frames per run: {len(b_frames)} binance, {len(c_frames)} coinbase ({loops} loops)")
    print(
        f"{'frames/s (CPU time)':30}{'binance depth':>18}{'cb l2update':>18}{'cb adv. l2_data':>18}"
    )
    ratios: dict[str, list[float]] = {
        "b_json": [],
        "c_json": [],
        "b_cf": [],
        "a_cf": [],
        "floor_cf": [],
    }
    notes: list[str] = []
    for number in range(1, rounds + 1):
        ours_b = max(ours_binance(b_snap, b_frames) for _ in range(repeat))
        ours_c = max(ours_coinbase(c_snap, c_frames, False) for _ in range(repeat))
        ours_a = max(ours_coinbase(a_snap, a_frames, True) for _ in range(repeat))
        base_b = max(baseline_binance(b_snap, b_frames) for _ in range(repeat))
        base_c = max(baseline_coinbase(c_snap, c_frames) for _ in range(repeat))
        floor_a = max(floor_advanced(a_snap, a_frames) for _ in range(repeat))
        other = cryptofeed(args.cryptofeed_python, loops, repeat)
        cf_b = cf_a = None
        if isinstance(other, dict):
            cf_b, cf_a = other.get("binance"), other.get("coinbase_advanced")
            notes = other.get("notes", [])
        else:
            notes = [f"not measured ({other})"]
        row(f"round {number}: ours", ours_b, ours_c, ours_a)
        row("  json.loads + dict", base_b, base_c, None)
        row("  unchecked floor", None, None, floor_a)
        row("  cryptofeed", cf_b, None, cf_a)
        ratios["b_json"].append(ours_b / base_b)
        ratios["c_json"].append(ours_c / base_c)
        if cf_b and cf_a:
            ratios["b_cf"].append(ours_b / cf_b)
            ratios["a_cf"].append(ours_a / cf_a)
            ratios["floor_cf"].append(floor_a / cf_a)
    median = {key: statistics.median(values) if values else None for key, values in ratios.items()}
    print(f"median of {rounds} round(s):")
    row("ratio ours / json+dict", median["b_json"], median["c_json"], None, fmt=".2f")
    row("ratio ours / cryptofeed", median["b_cf"], None, median["a_cf"], fmt=".2f")
    row("ratio floor / cryptofeed", None, None, median["floor_cf"], fmt=".2f")
    if ratios["b_cf"]:
        lows = (min(ratios["b_cf"]), min(ratios["a_cf"]))
        print(f"  (lowest round: binance {lows[0]:.2f}, coinbase advanced {lows[1]:.2f})")
    for note in notes:
        print(f"cryptofeed note: {note}")


if __name__ == "__main__":
    main()
