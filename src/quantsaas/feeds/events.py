"""Model events built without the frozen-dataclass `__init__` on the hot path.

A frozen slotted dataclass sets each field through `object.__setattr__` from Python code; for a
`BookDelta` that is most of the cost of making it (~1 µs a frame in bench_feeds). These builders
allocate the same class and fill its slots through the slot descriptors, in C: the objects are
identical (same type, same fields, same equality) to what the constructors make. Only for
classes without `__post_init__` (none of these has one).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from quantsaas.model import BookDelta, BookSnapshot, Instrument, Level, Side, Trade

_new = object.__new__


def _setters(cls: type, *names: str) -> tuple[Callable[[Any, Any], None], ...]:
    return tuple(cls.__dict__[name].__set__ for name in names)


_BOOK = ("instrument", "bids", "asks", "sequence", "ts_event", "ts_recv")
_D = _setters(BookDelta, *_BOOK)
_S = _setters(BookSnapshot, *_BOOK)
_T = _setters(Trade, "instrument", "price", "size", "side", "trade_id", "ts_event", "ts_recv")


def book_delta(
    instrument: Instrument,
    bids: tuple[Level, ...],
    asks: tuple[Level, ...],
    sequence: int,
    ts_event: int,
    ts_recv: int,
) -> BookDelta:
    event: BookDelta = _new(BookDelta)
    i, b, a, s, e, r = _D
    i(event, instrument)
    b(event, bids)
    a(event, asks)
    s(event, sequence)
    e(event, ts_event)
    r(event, ts_recv)
    return event


def book_snapshot(
    instrument: Instrument,
    bids: tuple[Level, ...],
    asks: tuple[Level, ...],
    sequence: int,
    ts_event: int,
    ts_recv: int,
) -> BookSnapshot:
    event: BookSnapshot = _new(BookSnapshot)
    i, b, a, s, e, r = _S
    i(event, instrument)
    b(event, bids)
    a(event, asks)
    s(event, sequence)
    e(event, ts_event)
    r(event, ts_recv)
    return event


def trade(
    instrument: Instrument,
    price: int,
    size: int,
    side: Side,
    trade_id: str,
    ts_event: int,
    ts_recv: int,
) -> Trade:
    event: Trade = _new(Trade)
    i, p, q, d, t, e, r = _T
    i(event, instrument)
    p(event, price)
    q(event, size)
    d(event, side)
    t(event, trade_id)
    e(event, ts_event)
    r(event, ts_recv)
    return event
