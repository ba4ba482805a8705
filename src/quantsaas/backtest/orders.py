"""Orders and fills of a backtest: plain mutable records the engine and the strategy share.

Prices and sizes are raw integers at the instrument's scales (model.py). Times are integer
nanoseconds: `submitted_ns` is the strategy's local time when it sent the order, `arrives_ns`
the exchange time at which the simulated venue sees it (submission + order latency). A fill
carries the exchange time it happened at (`ts_ns`) and the local time the strategy learns of it
(`seen_ns`, + market-data latency).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from quantsaas.model import Instrument, Side


class OrderStatus(enum.Enum):
    PENDING = "pending"
    """Sent, not yet at the venue (order latency)."""
    OPEN = "open"
    """Resting in the book (a limit order)."""
    FILLED = "filled"
    CANCELED = "canceled"
    """Cancelled by the strategy, or the unfilled rest of a market order (IOC)."""
    REJECTED = "rejected"
    """A post-only order that would have crossed, or an order the venue cannot take."""


DONE = frozenset({OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED})


class Liquidity(enum.Enum):
    MAKER = "maker"
    TAKER = "taker"


@dataclass(eq=False, slots=True)
class Order:
    """One order. `price` None is a market order; `post_only` refuses to take liquidity."""

    id: int
    instrument: Instrument
    side: Side
    size: int
    price: int | None
    submitted_ns: int
    arrives_ns: int
    post_only: bool = False
    status: OrderStatus = OrderStatus.PENDING
    filled: int = 0
    queue_ahead: int = 0
    """Size resting ahead of this order at its price (the queue model's estimate)."""
    level_seen: int = 0
    """The size of our level on our side when the order last looked (queue models)."""
    traded_at_level: int = 0
    """Trades at our level not yet matched by a book decrease (probabilistic queue model)."""
    reason: str = ""
    cancel_requested: bool = False
    fills: list[Fill] = field(default_factory=list)

    @property
    def remaining(self) -> int:
        return self.size - self.filled

    @property
    def is_buy(self) -> bool:
        return self.side is Side.BUY

    @property
    def done(self) -> bool:
        return self.status in DONE


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution of an order at one price. `fee` is in cash units (money.py): positive is
    paid, negative is a rebate."""

    order_id: int
    instrument: Instrument
    side: Side
    price: int
    size: int
    liquidity: Liquidity
    fee: int
    ts_ns: int
    seen_ns: int
