"""The client's local L2 book: kept exactly from a stream's snapshot and deltas.

The server sends a snapshot, then deltas holding new absolute sizes ("0" deletes). Levels are
raw integers (model.Level); each side is a dict (price -> size) beside an ascending list of its
prices, so a changed size is one dict store and a new or gone level a binary search plus a
C-level list insert or delete. The server publishes only books it validated, so a local book
that ends crossed (or gets a negative size) has lost a message: `apply_delta` raises
`BookOutOfSync` and the stream rebuilds it from a fresh snapshot.

Only the standalone client uses this (it may not import the server's book/l2.py).
"""

from __future__ import annotations

from bisect import bisect_left, insort

from quantsaas.client.errors import ClientError
from quantsaas.model import BookDelta, BookSnapshot, Level


class BookOutOfSync(ClientError):
    """The local book crossed or went negative: it must be rebuilt from a snapshot."""


def _update(sizes: dict[int, int], prices: list[int], levels: tuple[Level, ...]) -> None:
    for price, size in levels:
        if size:
            if size < 0:
                raise BookOutOfSync(f"negative size {size} at {price}")
            if price not in sizes:
                insort(prices, price)
            sizes[price] = size
        elif sizes.pop(price, None) is not None:
            del prices[bisect_left(prices, price)]


class LocalBook:
    """One instrument's book; `sequence`, `ts_event`, `ts_recv` of the last update applied."""

    __slots__ = (
        "instrument",
        "_bids",
        "_asks",
        "_bid_prices",
        "_ask_prices",
        "sequence",
        "ts_event",
        "ts_recv",
    )

    def __init__(self, snapshot: BookSnapshot) -> None:
        self.instrument = snapshot.instrument
        self._bids: dict[int, int] = {}
        self._asks: dict[int, int] = {}
        self._bid_prices: list[int] = []
        self._ask_prices: list[int] = []
        self.sequence = 0
        self.ts_event = 0
        self.ts_recv = 0
        self.apply_snapshot(snapshot)

    def apply_snapshot(self, snapshot: BookSnapshot) -> None:
        for side in (self._bids, self._asks, self._bid_prices, self._ask_prices):
            side.clear()
        self._apply(snapshot)

    def apply_delta(self, delta: BookDelta) -> None:
        self._apply(delta)

    def _apply(self, update: BookSnapshot | BookDelta) -> None:
        _update(self._bids, self._bid_prices, update.bids)
        _update(self._asks, self._ask_prices, update.asks)
        if self._bid_prices and self._ask_prices and self._bid_prices[-1] >= self._ask_prices[0]:
            raise BookOutOfSync(
                f"{self.instrument.symbol}: crossed at {self._bid_prices[-1]}/{self._ask_prices[0]}"
            )
        self.sequence = update.sequence
        self.ts_event = update.ts_event
        self.ts_recv = update.ts_recv

    def bids(self, depth: int | None = None) -> tuple[Level, ...]:
        """Best (highest) first."""
        prices = self._bid_prices
        chosen = prices[::-1] if depth is None else prices[: -depth - 1 : -1]
        sizes = self._bids
        return tuple([(price, sizes[price]) for price in chosen])

    def asks(self, depth: int | None = None) -> tuple[Level, ...]:
        """Best (lowest) first."""
        chosen = self._ask_prices if depth is None else self._ask_prices[:depth]
        sizes = self._asks
        return tuple([(price, sizes[price]) for price in chosen])

    def best_bid(self) -> Level | None:
        return (self._bid_prices[-1], self._bids[self._bid_prices[-1]]) if self._bids else None

    def best_ask(self) -> Level | None:
        return (self._ask_prices[0], self._asks[self._ask_prices[0]]) if self._asks else None

    def to_snapshot(self, depth: int | None = None) -> BookSnapshot:
        """An immutable copy (the model's value), at most `depth` levels per side."""
        return BookSnapshot(
            self.instrument,
            self.bids(depth),
            self.asks(depth),
            self.sequence,
            self.ts_event,
            self.ts_recv,
        )

    def __len__(self) -> int:
        return len(self._bids) + len(self._asks)
