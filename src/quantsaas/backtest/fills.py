"""The simulated venue of one instrument: its book, our resting orders, and the fill rules.

Market data is immutable history: our orders never change the replayed book. What we take
from it is remembered per level (`consumed`) until the venue next updates that level, so the
same liquidity is never filled twice (Nautilus's liquidity consumption). Rules:

* **market order**: walks the opposite side best first, one fill per level, taking at most
  what each level holds (less what we already took); what the book cannot fill is cancelled
  (IOC). Without any book (trades or bars only) it fills whole at the last traded price.
* **limit order**: the marketable part takes like a market order up to the limit price (a
  `post_only` order is rejected instead); the rest rests and joins the queue (queue.py).
* **resting order** fills, always at its own price (maker):
  - when a trade prints through its price (a sell below our bid): up to the trade's size;
  - when a trade prints at its price: what the trade leaves after the queue ahead;
  - when the opposite side reaches its price (best ask <= our bid): up to the size there.
  With `partial=False` any of these fills the whole order (hftbacktest's default exchange).
* bars only: a resting buy fills at min(limit, open) on a later bar whose low reaches it.

Every fill goes to `emit(order, price, size, liquidity, ts)` (the engine books it).
"""

from __future__ import annotations

from collections.abc import Callable

from quantsaas.analytics.candles import Candle
from quantsaas.backtest.orders import Liquidity, Order, OrderStatus
from quantsaas.backtest.queue import QueueModel
from quantsaas.book import L2Book
from quantsaas.errors import BookError
from quantsaas.model import BookDelta, BookSnapshot, Instrument, Side, Trade

Emit = Callable[[Order, int, int, Liquidity, int], None]
MAKER, TAKER = Liquidity.MAKER, Liquidity.TAKER


class Matcher:
    """Our orders against one instrument's replayed market."""

    def __init__(self, instrument: Instrument, queue: QueueModel, partial: bool, emit: Emit):
        self.instrument = instrument
        self.queue = queue
        self.partial = partial
        self.emit = emit
        self.book = L2Book(instrument)
        """The venue's book as replayed, applied here in event order (so an order arriving
        at t sees the book as of before t's event)."""
        self.has_book = False
        self.last_price: int | None = None
        self.bids: dict[int, list[Order]] = {}
        """Our resting buy orders by price, oldest first."""
        self.asks: dict[int, list[Order]] = {}
        self.taken_bids: dict[int, int] = {}
        """Size we took from a venue bid level since the venue last updated it."""
        self.taken_asks: dict[int, int] = {}
        self.rejected_book_events = 0

    # -- orders ------------------------------------------------------------------------------

    def arrive(self, order: Order, ts: int) -> None:
        """The order reaches the venue at exchange time `ts`."""
        if order.price is None:
            self._market(order, ts)
            return
        if self._marketable(order):
            if order.post_only:
                self._finish(order, OrderStatus.REJECTED, "post-only order would take")
                return
            self._take(order, order.price, ts)
            if not order.remaining:
                return
        order.status = OrderStatus.OPEN
        level = self.book.size_at(order.is_buy, order.price) if self.book.valid else 0
        self.queue.on_join(order, level)
        order.level_seen = level
        resting = self.bids if order.is_buy else self.asks
        resting.setdefault(order.price, []).append(order)

    def cancel(self, order: Order) -> bool:
        """Remove a resting order; False when it is no longer open (filled meanwhile)."""
        if order.status is not OrderStatus.OPEN or order.price is None:
            return False
        self._unrest(order)
        self._finish(order, OrderStatus.CANCELED, "cancelled")
        return True

    def open_orders(self) -> int:
        return sum(len(v) for v in self.bids.values()) + sum(len(v) for v in self.asks.values())

    def _marketable(self, order: Order) -> bool:
        assert order.price is not None
        if not self.has_book:
            return False
        if order.is_buy:
            best = self.book.best_ask() if self.book.valid else None
            return best is not None and best[0] <= order.price
        best = self.book.best_bid() if self.book.valid else None
        return best is not None and best[0] >= order.price

    def _market(self, order: Order, ts: int) -> None:
        if not self.has_book:
            if self.last_price is None:
                self._finish(order, OrderStatus.REJECTED, "no price yet")
                return
            self.emit(order, self.last_price, order.remaining, TAKER, ts)
            return
        self._take(order, None, ts)
        if order.remaining:
            self._finish(order, OrderStatus.CANCELED, "book exhausted (IOC rest cancelled)")

    def _take(self, order: Order, limit: int | None, ts: int) -> None:
        """Walk the opposite side up to `limit` (None: any price), one fill per level."""
        if not self.book.valid:
            return
        buy = order.is_buy
        levels = self.book.asks() if buy else self.book.bids()
        taken = self.taken_asks if buy else self.taken_bids
        for price, size in levels:
            if limit is not None and (price > limit if buy else price < limit):
                break
            available = size - taken.get(price, 0)
            if available <= 0:
                continue
            amount = min(available, order.remaining)
            taken[price] = taken.get(price, 0) + amount
            self.emit(order, price, amount, TAKER, ts)
            if not order.remaining:
                break

    def _unrest(self, order: Order) -> None:
        assert order.price is not None
        resting = self.bids if order.is_buy else self.asks
        queue = resting.get(order.price)
        if queue is not None and order in queue:
            queue.remove(order)
            if not queue:
                del resting[order.price]

    def _finish(self, order: Order, status: OrderStatus, reason: str) -> None:
        order.status = status
        order.reason = reason

    def _fill_resting(self, order: Order, amount: int, ts: int) -> None:
        """A maker fill of `amount` (already capped) at the order's own price."""
        if amount <= 0:
            return
        if not self.partial:
            amount = order.remaining
        amount = min(amount, order.remaining)
        assert order.price is not None
        self.emit(order, order.price, amount, MAKER, ts)
        if not order.remaining:
            self._unrest(order)

    # -- market data -------------------------------------------------------------------------

    def on_book(self, event: BookDelta | BookSnapshot) -> None:
        """A venue book message: applied to our book, then our queues and crossings follow."""
        self.has_book = True
        book = self.book
        snapshot = type(event) is BookSnapshot
        try:
            if snapshot:
                book.apply_snapshot(event)  # type: ignore[arg-type]
            else:
                book.apply_delta(event)  # type: ignore[arg-type]
        except BookError:
            self.rejected_book_events += 1
            return
        if snapshot:
            self.taken_bids.clear()
            self.taken_asks.clear()
        else:
            for price, _ in event.bids:
                self.taken_bids.pop(price, None)
            for price, _ in event.asks:
                self.taken_asks.pop(price, None)
        if self.bids:
            self._follow_levels(True, self.bids)
        if self.asks:
            self._follow_levels(False, self.asks)
        if self.bids or self.asks:
            self._cross(event.ts_event)

    def _follow_levels(self, is_buy: bool, resting: dict[int, list[Order]]) -> None:
        """Tell the queue model about every change of a level holding our orders (compared
        with the size each order last saw there)."""
        size_at = self.book.size_at
        queue = self.queue
        for price, orders in resting.items():
            after = size_at(is_buy, price)
            for order in orders:
                if order.level_seen != after:
                    queue.on_level(order, order.level_seen, after)
                    order.level_seen = after

    def _cross(self, ts: int) -> None:
        """Fill resting orders the opposite side has reached (maker, at our price)."""
        book = self.book
        if self.bids:
            best = book.best_ask()
            if best is not None and best[0] <= max(self.bids):
                self._cross_side(True, ts)
        if self.asks:
            best = book.best_bid()
            if best is not None and best[0] >= min(self.asks):
                self._cross_side(False, ts)

    def _cross_side(self, buy: bool, ts: int) -> None:
        resting = self.bids if buy else self.asks
        taken = self.taken_asks if buy else self.taken_bids
        levels = self.book.asks() if buy else self.book.bids()
        for price in sorted(resting, reverse=buy):
            for order in list(resting.get(price, ())):
                for level_price, size in levels:
                    if buy and level_price > price or not buy and level_price < price:
                        break
                    available = size - taken.get(level_price, 0)
                    if available <= 0:
                        continue
                    amount = min(available, order.remaining) if self.partial else order.remaining
                    taken[level_price] = taken.get(level_price, 0) + min(amount, available)
                    self._fill_resting(order, amount, ts)
                    if not order.remaining:
                        break

    def on_trade(self, trade: Trade) -> None:
        self.last_price = trade.price
        if trade.side is Side.SELL:
            if self.bids:
                self._trade_side(self.bids, True, trade.price, trade.size, trade.ts_event)
        elif self.asks:
            self._trade_side(self.asks, False, trade.price, trade.size, trade.ts_event)

    def _trade_side(
        self, resting: dict[int, list[Order]], buy: bool, price: int, size: int, ts: int
    ) -> None:
        budget = size
        queue = self.queue
        for level in sorted(resting, reverse=buy):
            if buy and level < price or not buy and level > price:
                break
            for order in list(resting[level]):
                if level == price:
                    left = queue.on_trade(order, size)
                    amount = min(left, budget)
                else:  # traded through our price: nothing was ahead of us
                    amount = budget
                if amount > 0 and budget > 0:
                    filled = min(amount, order.remaining)
                    self._fill_resting(order, filled, ts)
                    budget -= filled

    def on_bar(self, bar: Candle) -> None:
        """A closed bar of a bars-only instrument: last price, and limit orders it reached."""
        self.last_price = bar.close
        if self.has_book:
            return
        ts = bar.ts_event
        for price in sorted(self.bids, reverse=True):
            if bar.low <= price:
                for order in list(self.bids[price]):
                    if order.arrives_ns <= bar.start_ns:
                        self.emit(order, min(price, bar.open), order.remaining, MAKER, ts)
                        self._unrest(order)
        for price in sorted(self.asks):
            if bar.high >= price:
                for order in list(self.asks[price]):
                    if order.arrives_ns <= bar.start_ns:
                        self.emit(order, max(price, bar.open), order.remaining, MAKER, ts)
                        self._unrest(order)
