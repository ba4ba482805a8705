"""History commands of the CLI: `record` (headless), `replay` and `export`, and the recording
options of `serve` (`--data-dir`, `--no-record`, `--flush`, `--retention-days`)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import datetime as dt
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from quantsaas import runtime
from quantsaas.config import Settings
from quantsaas.errors import ConfigError, UnknownInstrument, quote
from quantsaas.store.history import HistoryStore, parse_interval, parse_time
from quantsaas.store.layout import DAY_NS, TRADES, partition_dir, with_instrument
from quantsaas.store.progress import ProgressBar
from quantsaas.symbols import resolve

if TYPE_CHECKING:
    # `serve` loads this module for its options: the commands import the feeds, the replay and
    # PyArrow they use
    import pyarrow as pa

    from quantsaas.feeds.base import Feed
    from quantsaas.store.replay import RawFeed, StoredFeed

log = logging.getLogger("quantsaas")
FAR_FUTURE = 4_102_444_800 * 1_000_000_000  # 2100-01-01


def add_store_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, help="history directory (default ./data)")
    parser.add_argument("--no-record", action="store_true", help="do not record history")
    parser.add_argument("--flush", type=float, help="recorder flush interval, s (default 1)")
    parser.add_argument("--retention-days", type=int, help="delete older days (0: keep all)")


def with_store_options(settings: Settings, args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    if getattr(args, "data_dir", None) is not None:
        overrides["data_dir"] = args.data_dir
    if getattr(args, "no_record", False):
        overrides["record"] = False
    if getattr(args, "flush", None) is not None:
        overrides["record_flush_s"] = args.flush
    if getattr(args, "retention_days", None) is not None:
        overrides["retention_days"] = args.retention_days
    if not overrides:
        return settings
    try:
        return Settings.model_validate({**settings.model_dump(), **overrides})
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def recording_note(settings: Settings) -> str:
    if not settings.record:
        return "not recorded (--no-record)"
    return f"recording into {settings.data_dir.resolve()} (/api/v1/history/...)"


def add_commands(commands: Any, serve: argparse.ArgumentParser) -> None:
    record = commands.add_parser("record", help="record the feeds into the data dir (no API)")
    for action in serve._actions:
        if action.dest not in ("help", "no_record"):
            record._add_action(action)
    record.add_argument("--duration", type=float, help="stop after this many seconds")
    replay = commands.add_parser("replay", help="replay recorded history through the engine")
    replay.add_argument("--data-dir", type=Path, help="history directory (default ./data)")
    replay.add_argument("--from", dest="start", help="ISO 8601 or ns (default: everything)")
    replay.add_argument("--to", dest="end", help="ISO 8601 or ns, exclusive")
    replay.add_argument("--speed", default="max", help="1, 10 ... times real time, or max")
    replay.add_argument("--venues", help="comma-separated venues (default: all recorded)")
    replay.add_argument("--symbols", help="comma-separated symbols (default: all)")
    replay.add_argument("--normalised", action="store_true", help="venues too from Parquet")
    replay.add_argument("--depth", type=int, default=5, help="book levels in the summary")
    export = commands.add_parser("export", help="export recorded trades or candles")
    export.add_argument("--data-dir", type=Path, help="history directory (default ./data)")
    export.add_argument("--venue", required=True)
    export.add_argument("--symbol", required=True)
    export.add_argument("--from", dest="start", required=True, help="ISO 8601 or ns")
    export.add_argument("--to", dest="end", required=True, help="ISO 8601 or ns, exclusive")
    export.add_argument("--kind", choices=["trades", "candles"], default="trades")
    export.add_argument("--interval", default="1m", help="candle interval, 1s .. 1d")
    export.add_argument("--format", choices=["csv", "parquet"], default="csv")
    export.add_argument("--out", type=Path, required=True, help="file to write")
    serve_defaults = {a.dest: a.default for a in serve._actions if a.dest != "help"}
    for parser in (replay, export):
        own = {action.dest for action in parser._actions}
        parser.set_defaults(**{k: v for k, v in serve_defaults.items() if k not in own})


def _csv_list(text: str | None) -> tuple[str, ...]:
    return tuple(p.strip() for p in (text or "").split(",") if p.strip())


# -- record ----------------------------------------------------------------------------------


def record(settings: Settings, args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    recording = runtime.build(settings, "all", record=True)
    recorder = recording.recorder
    assert recorder is not None
    print(f"recording {', '.join(settings.feeds)} into {settings.data_dir}", flush=True)
    asyncio.run(_record(recording, args.duration))
    print(orjson.dumps(recorder.health()).decode(), flush=True)
    return 0 if recorder.status.last_error is None else 1


async def _record(recording: runtime.Runtime, duration: float | None) -> None:
    task = asyncio.create_task(recording.run())
    loop = asyncio.get_running_loop()
    for stop in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(stop, task.cancel)
    with contextlib.suppress(asyncio.CancelledError, TimeoutError):
        async with asyncio.timeout(duration):
            await task
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


# -- replay ----------------------------------------------------------------------------------


def _speed(text: str) -> float | None:
    if text == "max":
        return None
    try:
        speed = float(text)
    except ValueError:
        raise ConfigError(f"--speed must be a number or max, not {text!r}") from None
    if speed <= 0:
        raise ConfigError("--speed must be positive")
    return speed


def replay_feeds(
    settings: Settings,
    store: HistoryStore,
    start: int,
    end: int,
    speed: float | None,
    venues: tuple[str, ...] = (),
    symbols: tuple[str, ...] = (),
    normalised: bool = False,
    progress: Callable[[object, int, int], None] | None = None,
) -> list[StoredFeed | RawFeed]:
    """Raw frames for venues recorded raw (parsed by their feed), normalised events otherwise."""
    from quantsaas.feeds.registry import FEED_FACTORIES
    from quantsaas.feeds.transport import WsFeed
    from quantsaas.store.rawlog import raw_files
    from quantsaas.store.replay import RawFeed, stored_feeds

    feeds: list[StoredFeed | RawFeed] = []
    for feed in stored_feeds(store, start, end, venues, symbols, speed):
        raw: Feed | None = None
        if (
            not normalised
            and feed.venue in FEED_FACTORIES
            and raw_files(store.root, feed.venue, start, end)
        ):
            try:
                raw = FEED_FACTORIES[feed.venue](settings)
            except Exception as exc:  # e.g. a venue that needs the network to build its feed
                log.warning("%s: replaying normalised events, not raw frames: %s", feed.venue, exc)
        if isinstance(raw, WsFeed):
            only = feed.instruments if symbols else None
            feeds.append(RawFeed(raw, store.root, start, end, speed, only=only))
        else:
            feeds.append(feed)
    for index, replaying in enumerate(feeds):
        if progress is not None:
            replaying.progress = lambda done, total, part=index: progress(part, done, total)
    return feeds


def recorded_symbols(
    store: HistoryStore, texts: Sequence[str], venues: Sequence[str] = ()
) -> tuple[str, ...]:
    """Canonical symbols of the recorded instruments `texts` name, by the API's one rule
    (`symbols.resolve`: `BTC/USD`, `btc-usd`, an option's own name, a native name)."""
    recorded = [i for i in store.instruments() if not venues or i.venue in venues]
    found: dict[str, None] = {}
    for text in texts:
        try:
            named = resolve(recorded, text)
        except UnknownInstrument:
            raise ConfigError(f"nothing recorded in {store.root} named {quote(text)}") from None
        found.update(dict.fromkeys(i.symbol for i in named))
    return tuple(found)


def replay(settings: Settings, args: argparse.Namespace) -> int:
    store = HistoryStore(settings.data_dir)
    start = parse_time(args.start) if args.start else 0
    end = parse_time(args.end) if args.end else FAR_FUTURE
    symbols = recorded_symbols(store, _csv_list(args.symbols), _csv_list(args.venues))
    bar = ProgressBar("replay")
    feeds = replay_feeds(
        settings,
        store,
        start,
        end,
        _speed(args.speed),
        _csv_list(args.venues),
        symbols,
        args.normalised,
        bar.update,
    )
    if not feeds:
        raise ConfigError(f"nothing recorded in {settings.data_dir} for that selection")
    replaying = runtime.build(settings, "replay", feeds=feeds)
    asyncio.run(run_replay(replaying, feeds))
    bar.close()
    print(orjson.dumps(replay_summary(replaying, args.depth), option=orjson.OPT_INDENT_2).decode())
    return 0


async def run_replay(replaying: runtime.Runtime, feeds: Sequence[Feed]) -> None:
    """Run the replay runtime until every replaying feed has delivered its last event."""
    from quantsaas.store.replay import _Replaying

    task = asyncio.create_task(replaying.run())
    try:
        await asyncio.gather(
            *(feed.finished.wait() for feed in feeds if isinstance(feed, _Replaying))
        )
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def replay_summary(replaying: runtime.Runtime, depth: int) -> dict[str, Any]:
    engine = replaying.engine
    assert engine is not None
    out: dict[str, Any] = {}
    for key, book in sorted(engine.books.items()):
        instrument = book.instrument
        fmt_p, fmt_s = instrument.format_price, instrument.format_size
        out[f"{key[0]}:{key[1]}"] = {
            "trades": engine.market.register(instrument).trade_count,
            "book_valid": book.valid,
            "bids": [[fmt_p(p), fmt_s(s)] for p, s in book.bids(depth)],
            "asks": [[fmt_p(p), fmt_s(s)] for p, s in book.asks(depth)],
        }
    return {"events": replaying.bus.published, "instruments": out}


# -- export ----------------------------------------------------------------------------------


def export(settings: Settings, args: argparse.Namespace) -> int:
    store = HistoryStore(settings.data_dir)
    start, end = parse_time(args.start), parse_time(args.end)
    if end <= start:
        raise ConfigError("--to must be after --from")
    instrument = store.instrument(args.venue, args.symbol)
    first_day, last_day = start // DAY_NS, (end - 1) // DAY_NS
    # only the days with recordings: a range of centuries must not walk every empty day
    days = [day for day in _recorded_days(store, instrument) if first_day <= day <= last_day]
    bar = ProgressBar("export")

    def tables() -> Iterator[pa.Table]:
        """One table per recorded UTC day of the range, so memory stays bounded by a day."""
        for done, day in enumerate(days, 1):
            day_start, day_end = max(start, day * DAY_NS), min(end, (day + 1) * DAY_NS)
            table = _export_table(store, instrument, args, day_start, day_end)
            bar.update("days", done, len(days))
            if table.num_rows:
                yield table

    write = _write_csv if args.format == "csv" else _write_parquet
    rows = _write_atomic(args.out, lambda path: write(path, tables()))
    bar.close()
    print(f"{rows} rows written to {args.out}", file=sys.stderr)
    return 0


def _recorded_days(store: HistoryStore, instrument: Any) -> list[int]:
    """UTC day numbers with recorded trades of `instrument`, in order."""
    base = partition_dir(store.root, TRADES, instrument.venue, instrument.symbol, "x").parent
    days: list[int] = []
    for directory in sorted(base.glob("date=*")):
        try:
            day = dt.date.fromisoformat(directory.name.partition("=")[2])
        except ValueError:
            continue
        days.append((day - dt.date(1970, 1, 1)).days)
    return days


def _write_atomic(out: Path, write: Callable[[Path], int]) -> int:
    """Write through a temporary file renamed into place at the end: a failed or interrupted
    export leaves no unreadable file at `out` (nor its temporary file)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    temp = out.with_name(f".{out.name}.tmp")
    try:
        rows = write(temp)
        os.replace(temp, out)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return rows


def _write_csv(path: Path, tables: Iterator[pa.Table]) -> int:
    rows = 0
    with open(path, "w", newline="") as sink:
        writer = csv.writer(sink, lineterminator="\n")
        for index, table in enumerate(tables):
            if index == 0:
                writer.writerow(table.column_names)
            columns = [table.column(name).to_pylist() for name in table.column_names]
            writer.writerows(zip(*columns, strict=True))
            rows += table.num_rows
    return rows


def _write_parquet(path: Path, tables: Iterator[pa.Table]) -> int:
    import pyarrow.parquet as pq

    rows = 0
    writer: pq.ParquetWriter | None = None
    with open(path, "wb") as sink:
        for table in tables:
            if writer is None:
                writer = pq.ParquetWriter(sink, table.schema, compression="zstd")
            writer.write_table(table)
            rows += table.num_rows
        if writer is not None:
            writer.close()
    return rows


def _export_table(
    store: HistoryStore, instrument: Any, args: argparse.Namespace, start: int, end: int
) -> pa.Table:
    import pyarrow as pa

    fmt_p, fmt_s = instrument.format_price, instrument.format_size
    if args.kind == "candles":
        parse_interval(args.interval)
        candles = store.candles(instrument, args.interval, start, end, end)
        return pa.table(
            {
                "start_ns": [c.start_ns for c in candles],
                "open": [fmt_p(c.open) for c in candles],
                "high": [fmt_p(c.high) for c in candles],
                "low": [fmt_p(c.low) for c in candles],
                "close": [fmt_p(c.close) for c in candles],
                "volume": [fmt_s(c.volume) for c in candles],
                "buy_volume": [fmt_s(c.buy_volume) for c in candles],
                "trades": [c.trades for c in candles],
            }
        )
    table = store.trades_table(instrument, start, end)
    if not table.num_rows:
        return pa.table({})
    if args.format == "parquet":
        return with_instrument(table, instrument)
    rows = table.to_pylist()
    return pa.table(
        {
            "ts_event": [r["ts_event"] for r in rows],
            "ts_recv": [r["ts_recv"] for r in rows],
            "id": [r["trade_id"] for r in rows],
            "price": [fmt_p(r["price"]) for r in rows],
            "amount": [fmt_s(r["size"]) for r in rows],
            "side": ["buy" if r["side"] > 0 else "sell" for r in rows],
        }
    )


COMMANDS: dict[str, Callable[[Settings, argparse.Namespace], int]] = {
    "record": record,
    "replay": replay,
    "export": export,
}
