"""Queued events -> Arrow tables, one per (kind, instrument, UTC date), vectorised.

The hot loop only sorts events into per-instrument lists; the columns are then built with list
comprehensions and NumPy (`repeat` spreads a book message's fields over its level rows), which
keeps the writer well above 500,000 events/s on one core (bench/bench_store.py).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pyarrow as pa

from quantsaas.model import BookDelta, BookSnapshot, Instrument, Side, Trade
from quantsaas.store.layout import (
    BOOK,
    BOOK_DELTA,
    BOOK_SCHEMA,
    BOOK_SNAPSHOT,
    DAY_NS,
    EMPTY,
    SIDE_BUY,
    SIDE_SELL,
    TRADE_SCHEMA,
    TRADES,
)

Queued = Trade | BookDelta | BookSnapshot | tuple[int, BookSnapshot]
"""A queued event; a checkpoint snapshot is (BOOK_CHECKPOINT, snapshot)."""
Batch = tuple[str, Instrument, int, pa.Table]
"""(kind, instrument, UTC day number, rows)."""

_SIDES = {Side.BUY: SIDE_BUY, Side.SELL: SIDE_SELL}


def to_tables(events: Sequence[Queued], first_rec: int) -> Iterator[Batch]:
    """Tables of `events`, whose recording orders are first_rec, first_rec + 1, ..."""
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
        yield from _by_day(TRADES, instrument, _trade_table(recs, items))
    for instrument, recs, kinds, messages in books.values():
        yield from _by_day(BOOK, instrument, _book_table(recs, kinds, messages))


def _by_day(kind: str, instrument: Instrument, table: pa.Table) -> Iterator[Batch]:
    if not table.num_rows:
        return
    days = table.column("ts_event").to_numpy() // DAY_NS
    first, last = int(days[0]), int(days[-1])
    if first == last and days.min() == days.max():
        yield kind, instrument, first, table
        return
    for day in np.unique(days):
        yield kind, instrument, int(day), table.filter(pa.array(days == day))


def _trade_table(recs: list[int], items: list[Trade]) -> pa.Table:
    sides = _SIDES
    columns: list[Any] = [
        [t.ts_event for t in items],
        [t.ts_recv for t in items],
        recs,
        [t.price for t in items],
        [t.size for t in items],
        [sides[t.side] for t in items],
        [t.trade_id for t in items],
    ]
    return pa.Table.from_arrays(
        [pa.array(col, type=f.type) for col, f in zip(columns, TRADE_SCHEMA, strict=True)],
        schema=TRADE_SCHEMA,
    )


def _book_table(
    recs: list[int], kinds: list[int], messages: list[BookDelta | BookSnapshot]
) -> pa.Table:
    empty = [
        i for i, m in enumerate(messages) if kinds[i] != BOOK_DELTA and not m.bids and not m.asks
    ]
    for i in empty:
        messages[i] = replace(messages[i], bids=((0, 0),))  # one EMPTY marker row
    bid_counts = np.array([len(m.bids) for m in messages], dtype=np.int64)
    ask_counts = np.array([len(m.asks) for m in messages], dtype=np.int64)
    counts = bid_counts + ask_counts
    levels = [level for m in messages for side in (m.bids, m.asks) for level in side]
    prices = [price for price, _ in levels]
    sizes = [size for _, size in levels]
    pair_counts = np.stack([bid_counts, ask_counts], axis=1).ravel()
    sides = np.repeat(np.tile(np.array([0, 1], dtype=np.int8), len(messages)), pair_counts)
    if empty:
        sides[np.cumsum(counts)[empty] - 1] = EMPTY

    def per_message(values: list[int], dtype: Any) -> Any:
        return np.repeat(np.array(values, dtype=dtype), counts)

    arrays = [
        per_message([m.ts_event for m in messages], np.int64),
        per_message([m.ts_recv for m in messages], np.int64),
        per_message(recs, np.int64),
        per_message([m.sequence for m in messages], np.int64),
        per_message(kinds, np.int8),
        sides,
        np.array(prices, dtype=np.int64),
        np.array(sizes, dtype=np.int64),
    ]
    return pa.Table.from_arrays(
        [pa.array(a, type=f.type) for a, f in zip(arrays, BOOK_SCHEMA, strict=True)],
        schema=BOOK_SCHEMA,
    )
