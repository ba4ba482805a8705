"""Queued events -> NumPy columns, one `Rows` per (kind, instrument, UTC date), vectorised, and
their Parquet file (parquet_write.py: no PyArrow in the recording process).

The hot loop only sorts events into per-instrument lists; the columns are then built with list
comprehensions and NumPy (`repeat` spreads a book message's fields over its level rows), which
keeps the writer well above 500,000 events/s on one core (bench/bench_store.py).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from msgspec.structs import replace

from quantsaas.model import BookDelta, BookSnapshot, Instrument, Side, Trade
from quantsaas.store.layout import (
    BOOK,
    BOOK_DELTA,
    BOOK_SNAPSHOT,
    COLUMNS,
    DAY_NS,
    EMPTY,
    META_KEY,
    SIDE_BUY,
    SIDE_SELL,
    TRADES,
    atomic_file,
    instrument_meta,
)
from quantsaas.store.parquet_write import parquet_bytes

if TYPE_CHECKING:
    import pyarrow as pa

Queued = Trade | BookDelta | BookSnapshot | tuple[int, BookSnapshot]
"""A queued event; a checkpoint snapshot is (BOOK_CHECKPOINT, snapshot)."""

_SIDES = {Side.BUY: SIDE_BUY, Side.SELL: SIDE_SELL}


@dataclass(frozen=True, slots=True)
class Rows:
    """The rows of one file: `kind`'s columns (layout.COLUMNS) as NumPy integer arrays, and
    `trade_id` as a list of str or None."""

    kind: str
    columns: dict[str, Any]
    num_rows: int

    def column(self, name: str) -> Any:
        return self.columns[name]

    def where(self, mask: np.ndarray) -> Rows:
        picked = {
            name: [v for v, keep in zip(values, mask.tolist(), strict=True) if keep]
            if isinstance(values, list)
            else values[mask]
            for name, values in self.columns.items()
        }
        return Rows(self.kind, picked, int(mask.sum()))

    def parquet(self, instrument: Instrument) -> bytes:
        """The Parquet file of these rows, the instrument in its metadata."""
        columns = [(name, type_, self.columns[name]) for name, type_ in COLUMNS[self.kind]]
        return parquet_bytes(columns, self.num_rows, {META_KEY: instrument_meta(instrument)})

    def to_arrow(self) -> pa.Table:
        """The same rows as an Arrow table (benchmarks and tests; imports PyArrow)."""
        import pyarrow as pa

        from quantsaas.store.layout import SCHEMAS

        schema = SCHEMAS[self.kind]
        arrays = [pa.array(self.columns[field.name], type=field.type) for field in schema]
        return pa.Table.from_arrays(arrays, schema=schema)


Batch = tuple[str, Instrument, int, Rows]
"""(kind, instrument, UTC day number, rows)."""


def write_rows(rows: Rows, instrument: Instrument, path: Path) -> None:
    """Write `rows` as a complete Parquet file at `path` (layout.atomic_file)."""
    data = rows.parquet(instrument)
    with atomic_file(path) as sink:
        sink.write(data)


def to_rows(events: Sequence[Queued], first_rec: int) -> Iterator[Batch]:
    """Rows of `events`, whose recording orders are first_rec, first_rec + 1, ..."""
    trades: dict[int, tuple[Instrument, list[int], list[Trade]]] = {}
    books: dict[int, tuple[Instrument, list[int], list[int], list[BookDelta | BookSnapshot]]] = {}
    rec = first_rec
    for item in events:
        cls = type(item)
        if cls is Trade:
            instrument = item.instrument  # type: ignore[union-attr]
            group = trades.get(id(instrument))
            if group is None:
                group = trades[id(instrument)] = (instrument, [], [])
            group[1].append(rec)
            group[2].append(item)  # type: ignore[arg-type]
        else:
            if cls is tuple:
                kind, book = item  # type: ignore[misc]
            else:
                kind, book = (BOOK_DELTA if cls is BookDelta else BOOK_SNAPSHOT), item
            instrument = book.instrument
            entry = books.get(id(instrument))
            if entry is None:
                entry = books[id(instrument)] = (instrument, [], [], [])
            entry[1].append(rec)
            entry[2].append(kind)
            entry[3].append(book)
        rec += 1
    for instrument, recs, items in trades.values():
        yield from _by_day(TRADES, instrument, _trade_rows(recs, items))
    for instrument, recs, kinds, messages in books.values():
        yield from _by_day(BOOK, instrument, _book_rows(recs, kinds, messages))


def _by_day(kind: str, instrument: Instrument, rows: Rows) -> Iterator[Batch]:
    if not rows.num_rows:
        return
    days = rows.column("ts_event") // DAY_NS
    first, last = int(days[0]), int(days[-1])
    if first == last and days.min() == days.max():
        yield kind, instrument, first, rows
        return
    for day in np.unique(days):
        yield kind, instrument, int(day), rows.where(days == day)


def _trade_rows(recs: list[int], items: list[Trade]) -> Rows:
    sides = _SIDES
    columns = {
        "ts_event": np.array([t.ts_event for t in items], dtype=np.int64),
        "ts_recv": np.array([t.ts_recv for t in items], dtype=np.int64),
        "rec": np.array(recs, dtype=np.int64),
        "price": np.array([t.price for t in items], dtype=np.int64),
        "size": np.array([t.size for t in items], dtype=np.int64),
        "side": np.array([sides[t.side] for t in items], dtype=np.int8),
        "trade_id": [t.trade_id for t in items],
    }
    return Rows(TRADES, columns, len(items))


def _book_rows(recs: list[int], kinds: list[int], messages: list[BookDelta | BookSnapshot]) -> Rows:
    empty = [
        i for i, m in enumerate(messages) if kinds[i] != BOOK_DELTA and not m.bids and not m.asks
    ]
    for i in empty:
        messages[i] = replace(messages[i], bids=((0, 0),))  # one EMPTY marker row
    bid_counts = np.array([len(m.bids) for m in messages], dtype=np.int64)
    ask_counts = np.array([len(m.asks) for m in messages], dtype=np.int64)
    counts = bid_counts + ask_counts
    levels = [level for m in messages for side in (m.bids, m.asks) for level in side]
    pair_counts = np.stack([bid_counts, ask_counts], axis=1).ravel()
    sides = np.repeat(np.tile(np.array([0, 1], dtype=np.int8), len(messages)), pair_counts)
    if empty:
        sides[np.cumsum(counts)[empty] - 1] = EMPTY

    def per_message(values: list[int], dtype: Any) -> Any:
        return np.repeat(np.array(values, dtype=dtype), counts)

    columns = {
        "ts_event": per_message([m.ts_event for m in messages], np.int64),
        "ts_recv": per_message([m.ts_recv for m in messages], np.int64),
        "rec": per_message(recs, np.int64),
        "seq": per_message([m.sequence for m in messages], np.int64),
        "kind": per_message(kinds, np.int8),
        "side": sides,
        "price": np.array([price for price, _ in levels], dtype=np.int64),
        "size": np.array([size for _, size in levels], dtype=np.int64),
    }
    return Rows(BOOK, columns, len(levels))
