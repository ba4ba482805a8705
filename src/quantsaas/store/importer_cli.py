"""`quantsaas import tardis|binance TYPE FILE... --venue V --symbol BASE/QUOTE`: public files
into the history store (importer.py), so `history` queries, `replay` and backtests see them.

The instrument: if the store already has `--venue`/`--symbol`, its scales are used (a file
with finer numbers is then reported row by row); otherwise `--price-scale`/`--size-scale`, or
else the most decimals written in the first block of the first file (at most MAX_SCALE).
Exit status 0 when every row was imported, 1 when some rows were bad (the rest is imported,
each bad row is listed with its file and line), 2 when nothing could be imported.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from quantsaas.config import Settings
from quantsaas.errors import ConfigError, QuantError, UnknownInstrument
from quantsaas.model import Instrument, symbol_from_text
from quantsaas.store.history import HistoryStore

FORMATS = ("binance", "tardis")
"""(The importers, with PyArrow, load when the command runs: every `serve` builds this parser.)"""


def add_commands(commands: Any) -> None:
    parser = commands.add_parser("import", help="import Tardis or Binance CSV files")
    parser.add_argument("format", choices=FORMATS)
    parser.add_argument(
        "type",
        help="tardis: trades, incremental_book_L2, book_snapshot_25, "
        "quotes; binance: trades, aggTrades, klines",
    )
    parser.add_argument("files", nargs="+", type=Path, help=".csv, .csv.gz or .zip")
    parser.add_argument("--venue", required=True, help="our venue name, e.g. binance")
    parser.add_argument("--symbol", required=True, help="canonical BASE/QUOTE, e.g. BTC/USDT")
    parser.add_argument("--native", help="the venue's own symbol (default BASEQUOTE)")
    parser.add_argument("--price-scale", type=int, help="decimals of prices")
    parser.add_argument("--size-scale", type=int, help="decimals of sizes")
    parser.add_argument("--data-dir", type=Path, help="history directory (default ./data)")
    parser.add_argument("--json", action="store_true", help="print the reports as JSON")


def _price_size_columns(fmt: str, data_type: str) -> tuple[list[str], list[str]]:
    if fmt == "binance":
        if data_type == "klines":
            return ["open", "high", "low", "close"], ["volume"]
        return ["price"], ["qty"]
    if data_type == "quotes":
        return ["bid_price", "ask_price"], ["bid_amount", "ask_amount"]
    if data_type.startswith("book_snapshot_"):
        return ["bids[0].price", "asks[0].price"], ["bids[0].amount", "asks[0].amount"]
    return ["price"], ["amount"]


def _columns(fmt: str, data_type: str, path: Path) -> tuple[list[str], bool]:
    from quantsaas.store import importer_binance, importer_tardis

    if fmt == "tardis":
        return importer_tardis.columns_of(data_type), True
    return importer_binance.layout_of(path, data_type)


def infer_scales(fmt: str, data_type: str, path: Path) -> tuple[int, int]:
    """The most decimals written in the first block's price and size columns."""
    from quantsaas.store.importer import MAX_SCALE, CsvReader, Report, decimals_in

    names, header = _columns(fmt, data_type, path)
    reader = CsvReader(path, names, header, Report(str(path)), check=fmt == "tardis")
    prices, sizes = _price_size_columns(fmt, data_type)
    for batch, _ in reader.batches():
        price = max(decimals_in(batch.column(n)) for n in prices)
        size = max(decimals_in(batch.column(n)) for n in sizes)
        return min(price, MAX_SCALE), min(size, MAX_SCALE)
    raise ConfigError(f"{path.name}: no rows to infer the scales from; give --price-scale")


def resolve_instrument(args: argparse.Namespace, store: HistoryStore) -> Instrument:
    from quantsaas.store.importer import MAX_SCALE

    symbol = symbol_from_text(args.symbol)
    base, sep, quote = symbol.partition("/")
    if not sep or not base or not quote:
        raise ConfigError(f"--symbol must be BASE/QUOTE, not {args.symbol[:40]!r}")
    try:
        known = store.instrument(args.venue, symbol)
    except UnknownInstrument:
        known = None
    for name in ("price_scale", "size_scale"):
        given = getattr(args, name)
        if given is not None and not 0 <= given <= MAX_SCALE:
            raise ConfigError(f"--{name.replace('_', '-')} must be 0..{MAX_SCALE}")
        if known is not None and given is not None and given != getattr(known, name):
            raise ConfigError(
                f"{args.venue} {symbol} is stored with {name} {getattr(known, name)}, not {given}"
            )
    if known is not None:
        return known
    price_scale, size_scale = args.price_scale, args.size_scale
    if price_scale is None or size_scale is None:
        inferred = infer_scales(args.format, args.type, args.files[0])
        price_scale = inferred[0] if price_scale is None else price_scale
        size_scale = inferred[1] if size_scale is None else size_scale
    return Instrument(
        venue=args.venue,
        base=base,
        quote=quote,
        native_symbol=args.native or f"{base}{quote}",
        price_scale=price_scale,
        size_scale=size_scale,
        tick_size=1,
        lot_size=1,
    )


def import_files(args: argparse.Namespace) -> int:
    from quantsaas.store import importer_binance, importer_tardis
    from quantsaas.store.importer import Report

    try:
        settings = Settings()
    except ValidationError as exc:
        raise ConfigError(str(exc)) from None
    types = {"tardis": importer_tardis.TYPES, "binance": importer_binance.TYPES}[args.format]
    if args.type not in types:
        raise ConfigError(f"{args.format} has no type {args.type!r}; one of {', '.join(types)}")
    root = args.data_dir or settings.data_dir
    store = HistoryStore(root)
    instrument = resolve_instrument(args, store)
    run = (
        importer_tardis.import_tardis
        if args.format == "tardis"
        else importer_binance.import_binance
    )
    reports = []
    began = time.perf_counter()
    for path in args.files:
        report = Report(str(path))
        run(path, args.type, instrument, root, report)
        reports.append(report)
    elapsed = time.perf_counter() - began
    rows = sum(r.rows for r in reports)
    bad = sum(r.bad for r in reports)
    if args.json:
        payload = {
            "instrument": f"{instrument.venue}:{instrument.symbol}",
            "price_scale": instrument.price_scale,
            "size_scale": instrument.size_scale,
            "rows": rows,
            "bad_rows": bad,
            "seconds": round(elapsed, 3),
            "files": [r.as_dict() for r in reports],
        }
        print(orjson.dumps(payload, option=orjson.OPT_INDENT_2).decode())
    else:
        for report in reports:
            written = ", ".join(f"{n:,} {kind}" for kind, n in report.written.items()) or "nothing"
            print(f"{report.path}: {report.rows:,} rows, {report.bad:,} bad; wrote {written}")
            for line, reason in sorted(report.details):
                print(f"  {report.path}:{line}: {reason}")
            if report.bad > len(report.details):
                print(f"  ... and {report.bad - len(report.details):,} more bad rows")
        print(
            f"{instrument.venue} {instrument.symbol} (price scale {instrument.price_scale}, "
            f"size scale {instrument.size_scale}): {rows:,} rows in {elapsed:.1f} s into {root}",
            file=sys.stderr,
        )
    if rows and bad == rows:
        return 2
    return 1 if bad else 0


def _guarded(args: argparse.Namespace) -> int:
    try:
        return import_files(args)
    except (QuantError, OSError) as exc:
        print(f"quantsaas: error: {exc}", file=sys.stderr)
        return 2


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {"import": _guarded}
