"""The strategy API: subclass `Strategy`, override the callbacks you need, trade through `self`.

    class SmaCross(Strategy):
        params = {"fast": 10, "slow": 30, "size": "1"}
        bar_interval = "1m"

        def on_bar(self, bar: Candle) -> None:
            ...
            self.buy(bar.instrument, self.size(bar.instrument, self.params["size"]))

Callbacks run in the strategy's local time (`self.now`): market data and fills arrive after the
market-data latency, and orders reach the venue after the order latency (engine.py). What the
strategy reads is what it has been told: `position()`, `cash()` and `open_orders()` change when a
fill or an order update is delivered, not before. Prices and sizes are raw integers at the
instrument's scales; `self.price(instrument, "123.45")` and `self.size(...)` convert exact text.

A strategy runs in the user's own process (CLI or Python), never in the server.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from quantsaas.analytics.candles import Candle
from quantsaas.backtest.orders import Fill, Order
from quantsaas.model import BookDelta, BookSnapshot, Instrument, Level, Side, Trade

if TYPE_CHECKING:
    from quantsaas.backtest.engine import Backtest


class BookView(Protocol):
    """Read-only view of one instrument's L2 book (an `L2Book`), as the strategy sees it."""

    @property
    def instrument(self) -> Instrument: ...

    @property
    def valid(self) -> bool: ...

    def best_bid(self) -> Level | None: ...

    def best_ask(self) -> Level | None: ...

    def bids(self, depth: int | None = None) -> list[Level]: ...

    def asks(self, depth: int | None = None) -> list[Level]: ...

    def mid(self) -> Decimal | None: ...

    def spread(self) -> int | None: ...

    def size_at(self, is_bid: bool, price: int) -> int: ...


class Strategy:
    """Base class of every strategy; the engine sets `self.engine` before `on_start`."""

    params: Mapping[str, Any] = {}
    """Defaults of the tunable parameters; `--param k=v` values are converted to their types."""
    bar_interval: ClassVar[str | None] = None
    """Build bars of this interval (`1m`, ...) from trades and call `on_bar` when one closes."""

    def __init__(self, **overrides: Any) -> None:
        self.params = {**type(self).params, **overrides}
        self.engine: Backtest | None = None

    # -- callbacks ---------------------------------------------------------------------------

    def on_start(self) -> None:
        """Called once before the first event."""

    def on_trade(self, trade: Trade) -> None:
        """A trade printed on the venue."""

    def on_book(self, book: BookView, event: BookDelta | BookSnapshot) -> None:
        """The book changed (`book` already includes `event`)."""

    def on_bar(self, bar: Candle) -> None:
        """A bar closed (built from trades at `bar_interval`, or read from bar data)."""

    def on_fill(self, fill: Fill) -> None:
        """One of our orders was (partly) filled."""

    def on_order(self, order: Order) -> None:
        """One of our orders was accepted, cancelled or rejected."""

    # -- actions -----------------------------------------------------------------------------

    def _engine(self) -> Backtest:
        if self.engine is None:
            raise RuntimeError("the strategy is not attached to a backtest")
        return self.engine

    @property
    def now(self) -> int:
        """The strategy's local time, ns."""
        return self._engine().local_ns

    @property
    def instruments(self) -> list[Instrument]:
        return self._engine().instruments

    def buy(
        self, instrument: Instrument, size: int, price: int | None = None, post_only: bool = False
    ) -> Order:
        """A buy order: market when `price` is None, else limit."""
        return self._engine().submit(instrument, Side.BUY, size, price, post_only)

    def sell(
        self, instrument: Instrument, size: int, price: int | None = None, post_only: bool = False
    ) -> Order:
        return self._engine().submit(instrument, Side.SELL, size, price, post_only)

    def submit(
        self,
        instrument: Instrument,
        side: Side,
        size: int,
        price: int | None = None,
        post_only: bool = False,
    ) -> Order:
        return self._engine().submit(instrument, side, size, price, post_only)

    def cancel(self, order: Order) -> None:
        self._engine().cancel(order)

    def position(self, instrument: Instrument) -> int:
        """Signed position, raw at the size scale, as of the fills delivered so far."""
        return self._engine().known_position(instrument)

    def cash(self, currency: str | None = None) -> int:
        """Cash in cash units (money.py) as of the fills delivered so far."""
        return self._engine().known_cash(currency)

    def open_orders(self, instrument: Instrument | None = None) -> list[Order]:
        """Orders sent and not yet known to be done."""
        return self._engine().known_open_orders(instrument)

    def book(self, instrument: Instrument) -> BookView:
        return self._engine().book_view(instrument)

    @staticmethod
    def price(instrument: Instrument, text: str) -> int:
        return instrument.price(text)

    @staticmethod
    def size(instrument: Instrument, text: str) -> int:
        return instrument.size(text)
