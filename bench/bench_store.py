"""History store: recorder ingest rate, query latencies, and why Parquet + DuckDB (vs SQLite).

    .venv/bin/python bench/bench_store.py [--quick] [--events N] [--trades N]

1. Ingest. `--events` normalised events (trades and 1-3 level book deltas, as the simulator
   emits them for BTC/USD and ETH/USD; generated first, not timed) go through the recorder:
   * hot path: `Recorder.on_event` per event (what the event loop pays), ns/event;
   * writer: `Recorder.flush()` of all of them (to NumPy columns + zstd Parquet written by
     store/parquet_write.py + fsync + rename, what the writer thread does), events/s on one
     core; target >= 500,000;
   * baseline A: `pyarrow.parquet.write_table` of the same rows, already as Arrow tables, in one
     go (the floor: no conversion from Python objects);
   * baseline B: SQLite (WAL, synchronous=NORMAL) `executemany` of the same rows, one transaction.
2. While the service runs: a live Engine + SimulatorFeed at a high rate with the recorder
   attached (writer thread on) for a few seconds: events recorded per second and the flush lag.
3. Queries over `--trades` synthetic trades in the store layout (one UTC day, 10 compacted
   files): 1-minute OHLCV of everything (target < 300 ms over 10 M) straight from the trades
   and from the 1-second rollups compaction writes (rollup.py), and a 1-hour trades page;
   baseline: SQLite 1-minute group-by of the same trades (no open/close).
Ratios are against the baselines measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from quantsaas import runtime
from quantsaas.config import Settings
from quantsaas.feeds.simulator import SimConfig, SimulatorFeed, select_instruments
from quantsaas.model import BookDelta, BookSnapshot, MarketEvent, Trade
from quantsaas.store import rollup
from quantsaas.store.columns import to_rows
from quantsaas.store.history import HistoryStore
from quantsaas.store.layout import (
    TRADE_SCHEMA,
    TRADES,
    partition_dir,
    with_instrument,
    write_atomic,
)
from quantsaas.store.recorder import Recorder, RecorderConfig

NS = 1_000_000_000


def generate(count: int) -> list[MarketEvent]:
    feed = SimulatorFeed(select_instruments("BTC/USD,ETH/USD"), SimConfig(events_per_second=5000))
    sims = [feed.simulator(instrument) for instrument in feed.instruments]
    out: list[MarketEvent] = [sim.snapshot() for sim in sims]
    target = 0
    while len(out) < count:
        target += NS // 10
        for sim in sims:
            out.extend(
                e for e in sim.run_until(target) if type(e) in (Trade, BookDelta, BookSnapshot)
            )
    return out[:count]


def bench_ingest(root: Path, events: list[MarketEvent]) -> float:
    recorder = Recorder(RecorderConfig(root / "ingest"))
    started = time.perf_counter()
    for event in events:
        recorder.on_event(event)
    hot = time.perf_counter() - started
    started = time.perf_counter()
    recorder.flush()
    writer = time.perf_counter() - started
    rate = len(events) / writer
    queued = [e for e in events if isinstance(e, Trade | BookDelta | BookSnapshot)]
    tables = [batch[3].to_arrow() for batch in to_rows(queued, 0)]
    rows = sum(t.num_rows for t in tables)
    started = time.perf_counter()
    for index, table in enumerate(tables):
        write_atomic(table, root / "baseline" / f"{index}.parquet")
    baseline = time.perf_counter() - started
    started = time.perf_counter()
    with sqlite3.connect(root / "sqlite.db") as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        for index, table in enumerate(tables):
            names = table.column_names
            db.execute(f"CREATE TABLE t{index} ({', '.join(names)})")
            columns = [table.column(n).to_pylist() for n in names]
            marks = ", ".join("?" * len(names))
            db.executemany(f"INSERT INTO t{index} VALUES ({marks})", zip(*columns, strict=True))
    sqlite_s = time.perf_counter() - started
    print(f"ingest of {len(events):,} events ({rows:,} Parquet rows, {len(tables)} files)")
    print(f"  hot path  Recorder.on_event     {hot / len(events) * 1e9:8.0f} ns/event")
    print(f"  writer    Recorder.flush        {rate:12,.0f} events/s  ({writer:.3f} s)")
    print(
        f"  baseline  write_table (Arrow)   {len(events) / baseline:12,.0f} events/s  "
        f"({baseline:.3f} s); writer/baseline time = {writer / baseline:.2f}x"
    )
    print(
        f"  sqlite    executemany           {len(events) / sqlite_s:12,.0f} events/s  "
        f"({sqlite_s:.3f} s); sqlite/writer time = {sqlite_s / writer:.2f}x"
    )
    return rate


async def bench_live(root: Path, seconds: float) -> None:
    feed = SimulatorFeed(select_instruments("BTC/USD,ETH/USD"), SimConfig(events_per_second=20_000))
    settings = Settings(data_dir=root / "live", record_flush_s=0.5, web_dist=None)
    built = runtime.build(settings, feeds=[feed], record=True)
    recorder = built.recorder
    assert recorder is not None
    task = asyncio.create_task(built.run())
    await asyncio.sleep(seconds)
    pending = recorder.pending
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    status = recorder.status
    print(
        f"live: sim at 2 x 20,000 events/s for {seconds:g} s with the recorder on: "
        f"{status.events / seconds:,.0f} events/s recorded, {status.files} files, "
        f"{pending} pending at stop, {status.dropped} dropped, errors: {status.last_error}"
    )


def bench_queries(root: Path, count: int) -> None:
    instrument = select_instruments("BTC/USD")[0]
    day0 = 1_704_067_200 * NS
    rng = np.random.default_rng(1)
    gaps = rng.integers(1, 2 * 86_400 * NS // count, size=count)
    ts = day0 + np.cumsum(gaps)
    ts = ts[ts < day0 + 86_400 * NS]
    n = len(ts)
    prices = 6_000_000 + np.cumsum(rng.integers(-10, 11, size=n)) * 10
    sizes = rng.integers(1, 5_000_000, size=n)
    sides = np.where(rng.random(n) < 0.5, 1, -1).astype(np.int8)
    directory = partition_dir(root / "q", TRADES, "sim", instrument.symbol, "2024-01-01")
    chunk = -(-n // 10)
    started = time.perf_counter()
    for index in range(10):
        part = slice(index * chunk, (index + 1) * chunk)
        table = pa.Table.from_arrays(
            [
                pa.array(ts[part]),
                pa.array(ts[part]),
                pa.array(np.arange(n)[part]),
                pa.array(prices[part]),
                pa.array(sizes[part]),
                pa.array(sides[part]),
                pa.array([str(i) for i in range(index * chunk, min(n, (index + 1) * chunk))]),
            ],
            schema=TRADE_SCHEMA,
        )
        write_atomic(with_instrument(table, instrument), directory / f"{index}.parquet")
    print(f"queries over {n:,} stored trades (written in {time.perf_counter() - started:.2f} s)")
    store = HistoryStore(root / "q")
    start, end = day0, day0 + 86_400 * NS

    def best_of_3(first: int, last: int) -> tuple[float, float, int]:
        timings = []
        for _ in range(3):
            started = time.perf_counter()
            candles = store.candles(instrument, "1m", first, last, last)
            timings.append(time.perf_counter() - started)
        return min(timings), timings[0], len(candles)

    ohlcv, cold, count = best_of_3(start + 1, end)  # not whole seconds: raw trades only
    label = f"1m OHLCV from trades ({count:,} candles)"
    print(f"  {label:44} {ohlcv * 1000:8.1f} ms (cold {cold * 1000:.1f})")
    started = time.perf_counter()
    built = rollup.build_missing(root / "q")
    print(
        f"  1 s rollups of {built} compacted slots built in {time.perf_counter() - started:.2f} s"
    )
    rolled, cold, count = best_of_3(start, end)
    label = f"1m OHLCV from 1 s rollups ({count:,} candles)"
    print(
        f"  {label:44} {rolled * 1000:8.1f} ms (cold {cold * 1000:.1f}); "
        f"trades/rollups = {ohlcv / rolled:.1f}x; target < 300 ms"
    )
    candles = store.candles(instrument, "1m", start, end, end)
    assert candles == store.candles(instrument, "1m", start + 1, end, end)
    started = time.perf_counter()
    page = store.trades(instrument, day0 + 12 * 3600 * NS, day0 + 13 * 3600 * NS, limit=1000)
    print(f"  1h trades page (1,000 rows)       {(time.perf_counter() - started) * 1000:8.1f} ms")
    assert len(page.trades) == 1000
    started = time.perf_counter()
    with sqlite3.connect(root / "q.db") as db:
        db.execute("CREATE TABLE trades (ts INTEGER, price INTEGER, size INTEGER)")
        db.executemany(
            "INSERT INTO trades VALUES (?, ?, ?)",
            zip(ts.tolist(), prices.tolist(), sizes.tolist(), strict=True),
        )
    load = time.perf_counter() - started
    started = time.perf_counter()
    with sqlite3.connect(root / "q.db") as db:
        rows = db.execute(
            "SELECT ts - ts % 60000000000 AS b, max(price), min(price), sum(size), count(*)"
            " FROM trades GROUP BY b ORDER BY b"
        ).fetchall()
    sqlite_s = time.perf_counter() - started
    print(
        f"  sqlite 1m group-by (no open/close) {sqlite_s * 1000:8.1f} ms "
        f"(load {load:.2f} s); sqlite/duckdb = {sqlite_s / ohlcv:.1f}x"
    )
    assert len(rows) == len(candles)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--trades", type=int, default=10_000_000)
    parser.add_argument("--live-s", type=float, default=5.0)
    args = parser.parse_args()
    if args.quick:
        args.events, args.trades, args.live_s = 100_000, 500_000, 1.0
    root = Path(tempfile.mkdtemp(prefix="bench-store-"))
    try:
        events = generate(args.events)
        rate = bench_ingest(root, events)
        print(f"  target >= 500,000 events/s: {'met' if rate >= 500_000 else 'NOT met'}")
        asyncio.run(bench_live(root, args.live_s))
        bench_queries(root, args.trades)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
