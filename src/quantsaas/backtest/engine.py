"""The backtest core: model events in, fills, accounting and an equity curve out.

`Backtest.on_event(event)` is the whole interface: feed it `Trade`, `BookSnapshot`,
`BookDelta` (and `Candle` bars) in event time, from any source (sources.py: recorded or
imported history, the seeded simulator) or as a consumer of the bus. It knows no engine, no
feed and no clock of its own, so a recorded day, a replay and a simulated market all run the
same code.

Two clocks (hftbacktest's local/exchange split):
* **exchange time** = the events' `ts_event`. The venue side (fills.py) applies each event at
  once: books, our resting orders, fills, the account.
* **local time** = when the strategy learns things: an event or a fill is delivered
  `md_latency_ns` after it happened; an order sent at local time t reaches the venue at
  t + `order_latency_ns` (a cancel too). With latency the strategy reads its own copy of the
  book, updated on delivery.

Everything due is kept in one heap ordered by (time, sequence), so ties resolve in the order
things were scheduled. Before an event at exchange time t is applied, everything due at or
before t runs first (an order arriving at t sees the book as of before t's event). The clock
never goes back: an event stamped earlier than the clock is applied at the clock's time.

The equity curve samples `Account.equity` on a fixed grid of `curve_ns`: the point at b is the
state after everything at or before b (metrics.py resamples it).
"""

from __future__ import annotations

import collections
import heapq
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from quantsaas.analytics.candles import INTERVALS, Candle, CandleBuilder
from quantsaas.backtest.fills import Matcher
from quantsaas.backtest.money import Account, Fees, Units, fee_of
from quantsaas.backtest.orders import Fill, Liquidity, Order, OrderStatus
from quantsaas.backtest.queue import queue_model
from quantsaas.backtest.strategy import BookView, Strategy
from quantsaas.book import L2Book
from quantsaas.errors import BookError, ConfigError, UnknownInstrument
from quantsaas.model import BookDelta, BookSnapshot, Instrument, Side, Trade

_ARRIVE, _CANCEL, _EVENT, _FILL, _ORDER = range(5)
DEFAULT_CASH = "1000000"


@dataclass(frozen=True)
class BacktestConfig:
    order_latency_ns: int = 0
    md_latency_ns: int = 0
    fees: Fees = field(default_factory=Fees)
    queue: str = "risk-averse"
    partial: bool = True
    cash: dict[str, str] = field(default_factory=dict)
    """Starting cash per quote currency, decimal text; a currency not listed starts with
    DEFAULT_CASH."""
    curve_ns: int = 60 * 1_000_000_000

    def __post_init__(self) -> None:
        if self.order_latency_ns < 0 or self.md_latency_ns < 0:
            raise ConfigError("latencies must not be negative")
        if self.curve_ns <= 0:
            raise ConfigError("the equity sampling interval must be positive")
        queue_model(self.queue)


@dataclass
class Curve:
    """Equity (cash units) and gross exposure sampled on the grid, per quote currency."""

    ts: list[int] = field(default_factory=list)
    equity: dict[str, list[int]] = field(default_factory=dict)
    exposure: dict[str, list[int]] = field(default_factory=dict)
    marks: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    """Each instrument's mark (raw at price_scale + 1) at the same points."""


class Backtest:
    """One strategy over one merged stream of events, on any number of instruments and venues."""

    def __init__(
        self,
        strategy: Strategy,
        instruments: Sequence[Instrument],
        config: BacktestConfig,
    ) -> None:
        if not instruments:
            raise ConfigError("a backtest needs at least one instrument")
        self.strategy = strategy
        self.config = config
        self.instruments = list(instruments)
        self.units = Units(self.instruments)
        cash = {
            c: self.units.cash(c, config.cash.get(c, DEFAULT_CASH)) for c in self.units.cash_scale
        }
        for currency in config.cash:
            if currency not in cash:
                raise ConfigError(f"cash in {currency}, but no instrument is quoted in it")
        self.account = Account(self.units, cash)
        queue = queue_model(config.queue)
        self.matchers: dict[tuple[str, str], Matcher] = {}
        for instrument in self.instruments:
            self.account.register(instrument)
            self.matchers[instrument.key] = Matcher(instrument, queue, config.partial, self._emit)
        self.md_latency = config.md_latency_ns
        self.order_latency = config.order_latency_ns
        self._views: dict[tuple[str, str], L2Book] = {
            key: (m.book if self.md_latency == 0 else L2Book(m.instrument))
            for key, m in self.matchers.items()
        }
        self._builders: dict[tuple[str, str], CandleBuilder] = {}
        if strategy.bar_interval is not None:
            if strategy.bar_interval not in INTERVALS:
                raise ConfigError(
                    f"bar_interval {strategy.bar_interval!r} is not one of {list(INTERVALS)}"
                )
            self._builders = {
                i.key: CandleBuilder(i, strategy.bar_interval) for i in self.instruments
            }
        self._heap: list[tuple[int, int, int, Any]] = []
        self._ready: collections.deque[tuple[int, int, Any]] = collections.deque()
        self._busy = False
        self._seq = 0
        self.now = 0
        """Exchange time: the last event's (or due item's) time."""
        self.local_ns = 0
        """The strategy's time while it runs a callback."""
        self.orders: list[Order] = []
        self.fills: list[Fill] = []
        self.events = 0
        self._known_positions: dict[tuple[str, str], int] = dict.fromkeys(self.matchers, 0)
        self._known_cash = dict(self.account.cash)
        self._known_open: dict[int, Order] = {}
        self.curve = Curve(
            equity={c: [] for c in self.units.cash_scale},
            exposure={c: [] for c in self.units.cash_scale},
            marks={key: [] for key in self.matchers},
        )
        self._next_sample: int | None = None
        self.first_ns: int | None = None
        self.started = False
        self.finished = False
        strategy.engine = self

    # -- input -------------------------------------------------------------------------------

    def run(self, events: Iterable[Any]) -> Backtest:
        for event in events:
            self.on_event(event)
        self.finish()
        return self

    def on_event(self, event: Any) -> None:
        """Apply one market event (Trade, BookSnapshot, BookDelta or a Candle bar)."""
        cls = type(event)
        if cls is Candle:
            t = event.end_ns
        else:
            t = event.ts_event
        if not self.started:
            self._start(t)
        if t < self.now:
            t = self.now
        if self._heap and self._heap[0][0] <= t:
            self._process(t)
        if self._next_sample is not None and self._next_sample < t:
            self._sample_until(t)
        self.now = t
        self.events += 1
        key = event.instrument.key
        matcher = self.matchers.get(key)
        if matcher is None:
            return  # an instrument this backtest does not trade
        if cls is BookDelta or cls is BookSnapshot:
            matcher.on_book(event)
            if not matcher.book.valid:
                return
        elif cls is Trade:
            builder = self._builders.get(key) if self._builders else None
            if builder is not None:
                closed = builder.on_trade(event)
                if closed is not None:
                    self._deliver(t, _EVENT, closed)
            matcher.on_trade(event)
        elif cls is Candle:
            matcher.on_bar(event)
        else:
            return
        if self._builders and cls is not Trade and cls is not Candle:
            builder = self._builders.get(key)
            if builder is not None and builder.current is not None:
                closed = builder.close_due(t)
                if closed is not None:
                    self._deliver(t, _EVENT, closed)
        self._deliver(t, _EVENT, event)
        self._process(t)

    def _start(self, t: int) -> None:
        self.started = True
        self.first_ns = t
        self.now = self.local_ns = t
        grid = self.config.curve_ns
        self._next_sample = t - t % grid
        self._sample_until(t + 1)
        self.strategy.on_start()
        self._process(t)

    def finish(self) -> None:
        """Close open bars and deliver what is due up to the last event; sample the end."""
        if self.finished:
            return
        self.finished = True
        if not self.started:
            return
        for builder in self._builders.values():
            if builder.current is not None:
                closed = builder.close_due(builder.current.end_ns)
                if closed is not None:
                    self._deliver(self.now, _EVENT, closed)
        self._process(self.now + self.md_latency)
        self._record(self.now)

    # -- scheduling --------------------------------------------------------------------------

    def _push(self, due: int, kind: int, item: Any) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (due, self._seq, kind, item))

    def _deliver(self, t: int, kind: int, item: Any) -> None:
        """Tell the strategy about `item` (an event, a fill, an order update) that happened at
        exchange time `t`: md_latency later, or right after the current step when zero."""
        if self.md_latency:
            self._push(t + self.md_latency, kind, item)
        else:
            self._ready.append((t, kind, item))

    def _process(self, t: int) -> None:
        """Run deliveries and everything due at or before `t`, in order. Never re-entered: what
        a step causes (a fill while an order walks the book, an order sent from a callback)
        waits until that step is complete."""
        if self._busy:
            return
        self._busy = True
        heap, ready = self._heap, self._ready
        try:
            while True:
                if ready:
                    when, kind, item = ready.popleft()
                    self.local_ns = when
                    self._dispatch(kind, item)
                elif heap and heap[0][0] <= t:
                    due, _, kind, item = heapq.heappop(heap)
                    if self._next_sample is not None and self._next_sample < due:
                        self._sample_until(due)
                    if due > self.now:
                        self.now = due
                    if kind >= _EVENT:
                        self.local_ns = due
                    self._dispatch(kind, item)
                else:
                    break
        finally:
            self._busy = False

    def _dispatch(self, kind: int, item: Any) -> None:
        strategy = self.strategy
        if kind == _ARRIVE:
            order: Order = item
            self.matchers[order.instrument.key].arrive(order, self.now)
            if order.status is not OrderStatus.PENDING:
                self._deliver(self.now, _ORDER, order)
            return
        if kind == _CANCEL:
            order = item
            if self.matchers[order.instrument.key].cancel(order):
                self._deliver(self.now, _ORDER, order)
            return
        if kind == _EVENT:
            cls = type(item)
            if cls is BookDelta or cls is BookSnapshot:
                view = self._views[item.instrument.key]
                if self.md_latency:
                    try:
                        view.apply_snapshot(item) if cls is BookSnapshot else view.apply_delta(item)
                    except BookError:
                        return
                strategy.on_book(view, item)
            elif cls is Trade:
                strategy.on_trade(item)
            else:
                strategy.on_bar(item)
        elif kind == _FILL:
            fill: Fill = item
            key = fill.instrument.key
            sign = 1 if fill.side is Side.BUY else -1
            notional = self.account.notional(fill.instrument, fill.price, fill.size)
            self._known_positions[key] += sign * fill.size
            self._known_cash[fill.instrument.quote] += -sign * notional - fill.fee
            strategy.on_fill(fill)
        else:
            order = item
            if order.done:
                self._known_open.pop(order.id, None)
            strategy.on_order(order)

    # -- orders ------------------------------------------------------------------------------

    def submit(
        self, instrument: Instrument, side: Side, size: int, price: int | None, post_only: bool
    ) -> Order:
        if instrument.key not in self.matchers:
            raise UnknownInstrument(
                f"{instrument.venue} {instrument.symbol} is not in this backtest"
            )
        if size <= 0 or not instrument.on_lot_grid(size):
            raise ConfigError(f"order size {size} is not a positive multiple of the lot size")
        if price is not None and (price <= 0 or not instrument.on_tick_grid(price)):
            raise ConfigError(f"order price {price} is not a positive multiple of the tick size")
        arrives = self.local_ns + self.order_latency
        order = Order(
            len(self.orders) + 1, instrument, side, size, price, self.local_ns, arrives, post_only
        )
        self.orders.append(order)
        self._known_open[order.id] = order
        self._push(arrives, _ARRIVE, order)
        return order

    def cancel(self, order: Order) -> None:
        if order.cancel_requested or order.id not in self._known_open:
            return
        order.cancel_requested = True
        self._push(self.local_ns + self.order_latency, _CANCEL, order)

    def _emit(self, order: Order, price: int, size: int, liquidity: Liquidity, ts: int) -> None:
        instrument = order.instrument
        account = self.account
        fee = fee_of(account.notional(instrument, price, size), self.config.fees.rate(liquidity))
        fill = Fill(
            order.id, instrument, order.side, price, size, liquidity, fee, ts, ts + self.md_latency
        )
        order.filled += size
        order.fills.append(fill)
        if not order.remaining:
            order.status = OrderStatus.FILLED
        account.apply(fill)
        self.fills.append(fill)
        self._deliver(ts, _FILL, fill)
        if order.status is OrderStatus.FILLED:
            self._deliver(ts, _ORDER, order)

    # -- what the strategy reads -------------------------------------------------------------

    def known_position(self, instrument: Instrument) -> int:
        return self._known_positions[instrument.key]

    def known_cash(self, currency: str | None) -> int:
        if currency is None:
            if len(self._known_cash) != 1:
                raise ConfigError("several quote currencies: name one")
            return next(iter(self._known_cash.values()))
        return self._known_cash[currency]

    def known_open_orders(self, instrument: Instrument | None) -> list[Order]:
        orders = self._known_open.values()
        if instrument is None:
            return list(orders)
        return [o for o in orders if o.instrument.key == instrument.key]

    def book_view(self, instrument: Instrument) -> BookView:
        return self._views[instrument.key]

    # -- marks and the curve -----------------------------------------------------------------

    def refresh_marks(self) -> None:
        """Mark every instrument: the book's mid when valid, else the last trade price."""
        account = self.account
        for key, matcher in self.matchers.items():
            book = matcher.book
            if book.valid:
                bid, ask = book.best_bid(), book.best_ask()
                if bid is not None and ask is not None:
                    account.set_mark(key, (bid[0] + ask[0]) * 5)
                    continue
            if matcher.last_price is not None:
                account.set_mark(key, matcher.last_price * 10)

    def equity(self, currency: str) -> int:
        self.refresh_marks()
        return self.account.equity(currency)

    def _sample_until(self, t: int) -> None:
        """Record grid points strictly before `t` (the state after everything up to them)."""
        assert self._next_sample is not None
        step = self.config.curve_ns
        if self._next_sample >= t:
            return
        self.refresh_marks()
        while self._next_sample < t:
            self._record(self._next_sample, refresh=False)
            self._next_sample += step

    def _record(self, ts: int, refresh: bool = True) -> None:
        if refresh:
            self.refresh_marks()
        curve = self.curve
        if curve.ts and curve.ts[-1] == ts:
            return
        curve.ts.append(ts)
        for currency in self.units.cash_scale:
            curve.equity[currency].append(self.account.equity(currency))
            curve.exposure[currency].append(self.account.gross_exposure(currency))
        marks = self.account.marks
        for key, series in curve.marks.items():
            series.append(marks.get(key, 0))
