"""On-disk layout of the store, its Arrow schemas and event <-> column conversion.

    {root}/trades/venue={v}/symbol={BTC-USD}/date=YYYY-MM-DD/{slot}-{rec}.part.parquet
    {root}/book/...                                           {slot}.parquet  (compacted)
    {root}/raw/{venue}/YYYY-MM-DD/HH.jsonl.zst

Prices and sizes are int64 raw values at the instrument's scales; the instrument (venue, symbol,
scales, grids) is JSON in the Parquet schema metadata under `quantsaas.instrument`. Every row has
`rec`, the recording order: a per-process counter started at the wall clock in ns, so it rises
across restarts. Each flush is written as a complete file under a temporary name and renamed, so
a reader never sees a partial file. A part file belongs to a wall-clock `slot` (10 minutes);
once its slot is over the parts are compacted into `{slot}.parquet` (see maintenance.py), and a
reader ignores the parts of any slot that has a compacted file.

PyArrow (about 70 MiB of RSS) is imported on first use, not with this module: the paths and
constants here are all an api process or the recorder's event-loop side need (the Arrow schemas
are built by the module `__getattr__` when first read).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import orjson

from quantsaas.model import Instrument, OptionSpec, symbol_from_text, symbol_to_path

if TYPE_CHECKING:
    import pyarrow as pa

TRADES, BOOK = "trades", "book"
KINDS = (TRADES, BOOK)
NS = 1_000_000_000
DAY_NS = 86_400 * NS
SLOT_NS = 600 * NS
META_KEY = b"quantsaas.instrument"
COMPRESSION = "zstd"

SIDE_BUY, SIDE_SELL = 1, -1
BOOK_DELTA, BOOK_SNAPSHOT, BOOK_CHECKPOINT = 0, 1, 2
"""Book message kinds: a venue delta, a venue snapshot, a periodic snapshot of our own book."""
BID, ASK, EMPTY = 0, 1, 2
"""Level side; EMPTY marks a snapshot without levels (one row, price and size 0)."""


INT64, INT8, STRING = "int64", "int8", "string"
"""Column kinds (parquet_write.py writes them, PyArrow reads them as int64, int8 and string)."""
TRADE_COLUMNS = (
    ("ts_event", INT64),
    ("ts_recv", INT64),
    ("rec", INT64),
    ("price", INT64),
    ("size", INT64),
    ("side", INT8),
    ("trade_id", STRING),
)
BOOK_COLUMNS = (
    ("ts_event", INT64),
    ("ts_recv", INT64),
    ("rec", INT64),
    ("seq", INT64),
    ("kind", INT8),
    ("side", INT8),
    ("price", INT64),
    ("size", INT64),
)
COLUMNS = {TRADES: TRADE_COLUMNS, BOOK: BOOK_COLUMNS}
"""Each kind's columns, in file order."""


@cache
def _schemas() -> dict[str, pa.Schema]:
    import pyarrow as pa

    types = {INT64: pa.int64(), INT8: pa.int8(), STRING: pa.string()}
    return {
        kind: pa.schema([(name, types[type_]) for name, type_ in columns])
        for kind, columns in COLUMNS.items()
    }


def __getattr__(name: str) -> Any:
    """TRADE_SCHEMA, BOOK_SCHEMA and SCHEMAS (kind -> schema), built with PyArrow on first use."""
    if name == "SCHEMAS":
        return _schemas()
    if name in ("TRADE_SCHEMA", "BOOK_SCHEMA"):
        return _schemas()[TRADES if name == "TRADE_SCHEMA" else BOOK]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def instrument_meta(instrument: Instrument) -> bytes:
    fields: dict[str, object] = {
        "venue": instrument.venue,
        "base": instrument.base,
        "quote": instrument.quote,
        "native_symbol": instrument.native_symbol,
        "price_scale": instrument.price_scale,
        "size_scale": instrument.size_scale,
        "tick_size": instrument.tick_size,
        "lot_size": instrument.lot_size,
    }
    if instrument.option is not None:  # an option is named by it (BTC-5DEC26-48000-C)
        fields["option"] = dataclasses.asdict(instrument.option)
    return orjson.dumps(fields)


def instrument_from_meta(raw: bytes) -> Instrument:
    fields = orjson.loads(raw)
    option = fields.pop("option", None)
    return Instrument(**fields, option=None if option is None else OptionSpec(**option))


def date_of(ts_ns: int) -> str:
    return dt.datetime.fromtimestamp(ts_ns // NS, tz=dt.UTC).strftime("%Y-%m-%d")


def partition_dir(root: Path, kind: str, venue: str, symbol: str, date: str) -> Path:
    return root / kind / f"venue={venue}" / f"symbol={symbol_to_path(symbol)}" / f"date={date}"


def symbol_dirs(root: Path, kind: str) -> Iterable[tuple[str, str, Path]]:
    """(venue, canonical symbol, directory) of every recorded instrument of `kind`."""
    base = root / kind
    if not base.is_dir():
        return
    for venue_dir in sorted(base.glob("venue=*")):
        for symbol_dir in sorted(venue_dir.glob("symbol=*")):
            venue = venue_dir.name.partition("=")[2]
            yield venue, symbol_from_text(symbol_dir.name.partition("=")[2]), symbol_dir


def data_files(directory: Path) -> list[Path]:
    """Readable files of one partition: compacted slots, and parts of uncompacted slots."""
    if not directory.is_dir():
        return []
    names = [p.name for p in directory.iterdir() if p.name.endswith(".parquet")]
    compacted = {name.removesuffix(".parquet") for name in names if "-" not in name}
    chosen = [name for name in names if "-" not in name or name.partition("-")[0] not in compacted]
    return [directory / name for name in sorted(chosen)]


def files_for(
    root: Path, kind: str, instrument_key: tuple[str, str], start: int, end: int
) -> list[Path]:
    """Readable files of the date partitions that overlap [start, end]."""
    venue, symbol = instrument_key
    first, last = date_of(max(0, start)), date_of(max(0, end))
    base = partition_dir(root, kind, venue, symbol, first).parent
    if not base.is_dir():
        return []
    found: list[Path] = []
    for directory in sorted(base.glob("date=*")):
        if first <= directory.name.partition("=")[2] <= last:
            found.extend(data_files(directory))
    return found


@contextmanager
def atomic_file(path: Path) -> Iterator[BinaryIO]:
    """A file written under a temporary name, fsynced, then renamed in place, so a reader sees
    the complete file or none. A failed write (a full disk) removes its temporary file: nothing
    is left behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp")
    try:
        with open(temp, "wb") as sink:
            yield sink
            sink.flush()
            os.fsync(sink.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def write_atomic(table: pa.Table, path: Path, row_group_size: int = 1_000_000) -> None:
    """Write an Arrow table as a complete Parquet file (`atomic_file`)."""
    import pyarrow.parquet as pq

    with atomic_file(path) as sink:
        pq.write_table(
            table,
            sink,
            compression=COMPRESSION,
            row_group_size=row_group_size,
            use_dictionary=False,
        )


def with_instrument(table: pa.Table, instrument: Instrument) -> pa.Table:
    return table.replace_schema_metadata({META_KEY: instrument_meta(instrument)})


def read_instrument(path: Path) -> Instrument:
    import pyarrow.parquet as pq

    metadata = pq.read_schema(path).metadata or {}
    return instrument_from_meta(metadata[META_KEY])
