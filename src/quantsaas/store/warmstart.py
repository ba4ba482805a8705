"""Simulator warm start: at the first start, the past hours of the simulated market, in history.

A newcomer's first minute otherwise shows a candle chart of one bar, an empty heatmap and no
history to query or backtest. So when `serve` starts with the simulator, recording, and no
simulator history in the data directory yet, this simulates the past `hours` (seeded, so a
given seed always gives the same past) and writes them as recorded history, in a thread in the
background, within a CPU budget: the simulated event rate is lowered until the whole period is
at most `max_events` events (about a second of simulation and a second of writing).

The writing path is the recorder's: `columns.to_rows` turns the events into columns and
`columns.write_rows` writes them into their date partitions, with checkpoint snapshots every
`snapshot_s` like the live recorder's, so rollups, history queries, `book_at` and replay treat
the warm start as any recording. A slot before the last is written already compacted
(`{slot}.parquet`: the live recorder's maintenance then has nothing to merge and delete under
the first visitors' queries); the last slot is a part beside the live recorder's parts. Its
recording orders (`rec`) start at the past's first event time in ns, far below the live
recorder's (the wall clock at its start), so a query ordering by `rec` sees the past first.

The past runs at a lower event rate than the live market (the budget), so its trade sizes are
scaled by the ratio of the rates: its volume per minute is the live market's (fewer, larger
trades). The live simulator starts at each instrument's start price, so the past is moved by a
whole number of price-grid steps to end there (every price of an instrument moves by the same
amount: the book stays on its grid, never crosses, and the chart has no jump where the live data
starts). The shift is only known at the end: the files are first written to a staging directory
(`.warmstart/`), then shifted into place and the staging directory removed. Interrupted, it
leaves only the staging directory, which the next start clears.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from quantsaas.feeds.base import Feed
from quantsaas.feeds.sim_book import MarketSimulator
from quantsaas.feeds.sim_instruments import MIN_RATE, SIM_VENUE, SimConfig, sim_spec
from quantsaas.feeds.simulator import SimulatorFeed
from quantsaas.model import BookDelta, BookSnapshot, Instrument, Trade
from quantsaas.store.columns import Queued, to_rows, write_rows
from quantsaas.store.layout import (
    BOOK,
    BOOK_CHECKPOINT,
    EMPTY,
    KINDS,
    META_KEY,
    NS,
    SLOT_NS,
    TRADES,
    date_of,
    instrument_from_meta,
    partition_dir,
    write_atomic,
)

log = logging.getLogger(__name__)

STAGING = ".warmstart"
MAX_EVENTS = 300_000
"""The budget: order-flow events over the whole period and every instrument."""
SEED_OFFSET = 1_000_003
"""The past is seeded apart from the live simulator, so the live market does not replay it."""


@dataclass(frozen=True)
class WarmStart:
    root: Path
    instruments: tuple[Instrument, ...]
    config: SimConfig
    """The live simulator's configuration (seed, volatility, event rate)."""
    end_ns: int
    """Where the simulated past ends: when the live simulator starts."""
    hours: float = 4.0
    snapshot_s: float = 60.0
    max_events: int = MAX_EVENTS

    @property
    def start_ns(self) -> int:
        return self.end_ns - round(self.hours * 3600 * NS)

    def rate(self) -> float:
        """Events per second and instrument: the live rate, lowered to fit the budget."""
        seconds = self.hours * 3600 * max(1, len(self.instruments))
        return max(MIN_RATE, min(self.config.events_per_second, self.max_events / seconds))


@dataclass
class WarmStartReport:
    events: int = 0
    files: int = 0
    cpu_s: float = 0.0
    shifts: dict[str, int] = field(default_factory=dict)
    """Raw price shift per symbol (so the past ends at the live start price)."""
    size_factor: int = 1
    """Trade sizes are multiplied by the live rate over the past's (rounded), so the volume per
    minute of the past matches the live market's: fewer, larger trades."""


def has_history(root: Path, venue: str = SIM_VENUE) -> bool:
    """Anything recorded for `venue` already (then there is nothing to warm)."""
    for kind in KINDS:
        base = root / kind / f"venue={venue}"
        if base.is_dir() and next(base.glob("symbol=*/date=*/*.parquet"), None) is not None:
            return True
    return False


def plan(
    root: Path, feeds: Sequence[Feed], hours: float, end_ns: int | None = None
) -> WarmStart | None:
    """The warm start this start needs: None without a simulator, with `hours` 0, or when the
    simulator's history exists. Call it before the live recorder writes anything."""
    sims = [feed for feed in feeds if isinstance(feed, SimulatorFeed)]
    if hours <= 0 or not sims or has_history(root):
        return None
    shutil.rmtree(root / STAGING, ignore_errors=True)  # an interrupted warm start
    feed = sims[0]
    instruments = tuple(i for i in feed.instruments if i.option is None)
    end = time.time_ns() if end_ns is None else end_ns
    return WarmStart(root, instruments, feed.config, end, hours)


def run(warm: WarmStart, stop: threading.Event | None = None) -> WarmStartReport:
    """Simulate and write the past; returns what was written (nothing if stopped early)."""
    started = time.process_time()
    report = WarmStartReport()
    staging = warm.root / STAGING
    config = replace(
        warm.config,
        seed=warm.config.seed + SEED_OFFSET,
        events_per_second=warm.rate(),
        ticker_interval_s=3600.0,  # tickers are not recorded
    )
    start = warm.start_ns
    sims = [MarketSimulator(sim_spec(i), config, epoch_ns=start) for i in warm.instruments]
    lowest = {sim.instrument.key: sim.mid for sim in sims}
    rec = start
    pending: list[Queued] = [sim.snapshot() for sim in sims]
    step = max(1, round(warm.snapshot_s * NS))
    slot = start // SLOT_NS
    at = start
    while at < warm.end_ns:
        if stop is not None and stop.is_set():
            shutil.rmtree(staging, ignore_errors=True)
            return WarmStartReport()
        at = min(warm.end_ns, (at // step + 1) * step)
        minute: list[Queued] = []
        for sim in sims:
            for event in sim.run_until(at - start):
                if type(event) is Trade or type(event) is BookDelta:
                    minute.append(event)
            lowest[sim.instrument.key] = min(lowest[sim.instrument.key], _low(sim))
        minute.sort(key=_ts)
        minute += [(BOOK_CHECKPOINT, _checkpoint(sim, start + sim.sim_ns)) for sim in sims]
        pending += minute
        if at // SLOT_NS != slot or at >= warm.end_ns:
            rec = _stage(staging, pending, rec, slot, report)
            pending, slot = [], at // SLOT_NS
    for sim in sims:
        key = sim.instrument.key
        spec = sim_spec(sim.instrument)
        shift = round((spec.start_price - sim.mid) / sim.unit) * sim.unit
        report.shifts[sim.instrument.symbol] = shift if lowest[key] + shift > 0 else 0
    report.size_factor = max(1, round(warm.config.events_per_second / config.events_per_second))
    last_slot = warm.end_ns // SLOT_NS
    report.files = _shift_into_place(staging, warm.root, report, last_slot)
    shutil.rmtree(staging, ignore_errors=True)
    report.cpu_s = time.process_time() - started
    return report


def _ts(event: Queued) -> int:
    return event[1].ts_event if isinstance(event, tuple) else event.ts_event


def _low(sim: MarketSimulator) -> float:
    bids, _ = sim.book()
    return float(bids[-1][0]) if bids else sim.mid


def _checkpoint(sim: MarketSimulator, ts: int) -> BookSnapshot:
    """The book as the live recorder checkpoints it: no sequence number of its own."""
    bids, asks = sim.book()
    return BookSnapshot(sim.instrument, bids, asks, sim.sequence, ts, ts)


def _stage(
    staging: Path, events: list[Queued], rec: int, slot: int, report: WarmStartReport
) -> int:
    """Write `events` as the parts of `slot` under the staging root; returns the next rec."""
    for kind, instrument, day, rows in to_rows(events, rec):
        directory = partition_dir(
            staging, kind, instrument.venue, instrument.symbol, date_of(day * 86_400 * NS)
        )
        first = int(rows.column("rec")[0])
        write_rows(rows, instrument, directory / f"{slot}-{first}.part.parquet")
    report.events += len(events)
    return rec + len(events)


def _shift_into_place(staging: Path, root: Path, report: WarmStartReport, last_slot: int) -> int:
    """Move every staged part into the store, its prices shifted (and its trade sizes scaled:
    `WarmStartReport.size_factor`); returns the files written.

    A slot before the last holds only the past (the live recorder writes from the last one on),
    so it is written as a compacted slot file: the live recorder's next maintenance has nothing
    to merge and delete under the queries of the first visitors. The last slot stays a part,
    beside the live recorder's parts of the same slot. (PyArrow, imported here: a first start.)"""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    written = 0
    for path in sorted(staging.glob("*/venue=*/symbol=*/date=*/*.parquet")):
        table = pq.read_table(path)
        metadata = table.schema.metadata or {}
        instrument = instrument_from_meta(metadata[META_KEY])
        shift = report.shifts.get(instrument.symbol, 0)
        if shift:
            price = table.column("price")
            moved = pc.add(price, pa.scalar(shift, pa.int64()))
            if path.parts[-5] == BOOK:  # an empty snapshot's marker row keeps price 0
                moved = pc.if_else(pc.equal(table.column("side"), EMPTY), price, moved)
            table = table.set_column(table.schema.get_field_index("price"), "price", moved)
        if path.parts[-5] == TRADES and report.size_factor > 1:
            sizes = pc.multiply(table.column("size"), pa.scalar(report.size_factor, pa.int64()))
            table = table.set_column(table.schema.get_field_index("size"), "size", sizes)
        table = table.replace_schema_metadata(metadata)
        target = root / path.relative_to(staging)
        slot = int(path.name.partition("-")[0])
        if slot < last_slot:
            target = target.with_name(f"{slot}.parquet")
        write_atomic(table, target)
        written += 1
    return written


class WarmStartJob:
    """`run` in a daemon thread, as a background job of the runtime: it never raises (a failed
    warm start is logged; the live service is unaffected) and stops early on cancellation."""

    def __init__(self, warm: WarmStart) -> None:
        self.warm = warm
        self.report: WarmStartReport | None = None
        self._stop = threading.Event()

    async def __call__(self) -> None:
        loop = asyncio.get_running_loop()
        done = asyncio.Event()

        def work() -> None:
            try:
                self.report = run(self.warm, self._stop)
            except Exception:
                log.exception("simulator warm start failed (history starts now instead)")
            finally:
                loop.call_soon_threadsafe(done.set)

        log.info(
            "warm start: simulating the past %.1f h of %d instrument(s) into %s",
            self.warm.hours,
            len(self.warm.instruments),
            self.warm.root,
        )
        threading.Thread(target=work, name="warm-start", daemon=True).start()
        try:
            await done.wait()
        finally:
            self._stop.set()
        if self.report is not None and self.report.events:
            log.info(
                "warm start: %d events in %d files (%.1f s CPU)",
                self.report.events,
                self.report.files,
                self.report.cpu_s,
            )
