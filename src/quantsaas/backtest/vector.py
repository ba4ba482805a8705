"""The vectorised path for bar strategies: signals over whole arrays, then exact accounting.

A strategy that defines `vector(bars) -> target` (a NumPy int64 array: the position it wants
after each bar's close, raw at the size scale) is run without a Python call per bar: the
signals are array operations, and only the bars where the target changes become fills, each a
market order filled at that bar's close with the taker fee — exactly what the event path does
with a market order sent from `on_bar` (no latency, bars only). The fills then go through the
same Account (exact integers), and the equity curve is `cash + position * close` per bar in
int64 (Python integers if the values could overflow).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from quantsaas.analytics.candles import INTERVALS, Candle
from quantsaas.backtest.engine import DEFAULT_CASH, BacktestConfig, Curve
from quantsaas.backtest.money import Account, Units, fee_of
from quantsaas.backtest.orders import Fill, Liquidity, Order, OrderStatus
from quantsaas.errors import ConfigError
from quantsaas.model import Instrument, Side

INT64_SAFE = 2**62


@dataclass(frozen=True)
class Bars:
    """One instrument's bars as int64 arrays (prices raw at price_scale, volume at size_scale);
    `start_ns` is each bar's open time."""

    instrument: Instrument
    interval: str
    start_ns: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    @classmethod
    def from_candles(cls, candles: Sequence[Candle]) -> Bars:
        if not candles:
            raise ConfigError("no bars in that range")
        first = candles[0]

        def column(name: str) -> np.ndarray:
            return np.array([getattr(c, name) for c in candles], dtype=np.int64)

        return cls(
            first.instrument,
            first.interval,
            column("start_ns"),
            column("open"),
            column("high"),
            column("low"),
            column("close"),
            column("volume"),
        )

    def __len__(self) -> int:
        return len(self.close)

    @property
    def end_ns(self) -> np.ndarray:
        return self.start_ns + INTERVALS[self.interval]


@dataclass
class VectorRun:
    """What `run_vector` returns: the same pieces a `Backtest` holds after a run."""

    instruments: list[Instrument]
    units: Units
    account: Account
    orders: list[Order]
    fills: list[Fill]
    curve: Curve
    events: int
    first_ns: int
    now: int


def run_vector(target: np.ndarray, bars: Bars, config: BacktestConfig) -> VectorRun:
    instrument = bars.instrument
    if target.shape != bars.close.shape:
        raise ConfigError(f"vector() returned {target.shape}, expected one value per bar")
    target = np.asarray(target, dtype=np.int64)
    if np.any(target % instrument.lot_size):
        raise ConfigError("vector() target positions must be multiples of the lot size")
    units = Units([instrument])
    currency = instrument.quote
    account = Account(
        units, {currency: units.cash(currency, config.cash.get(currency, DEFAULT_CASH))}
    )
    account.register(instrument)
    previous = np.concatenate([np.zeros(1, dtype=np.int64), target[:-1]])
    change = target - previous
    where = np.flatnonzero(change)
    ends = bars.end_ns
    orders: list[Order] = []
    fills: list[Fill] = []
    cash_after = [account.cash[currency]]
    """Cash from each fill on (the first entry: before any fill)."""
    taker = config.fees.taker
    closes = bars.close
    for index in where.tolist():
        delta = int(change[index])
        price = int(closes[index])
        ts = int(ends[index])
        side = Side.BUY if delta > 0 else Side.SELL
        size = abs(delta)
        order = Order(len(orders) + 1, instrument, side, size, None, ts, ts)
        fee = fee_of(account.notional(instrument, price, size), taker)
        fill = Fill(order.id, instrument, side, price, size, Liquidity.TAKER, fee, ts, ts)
        order.filled, order.status = size, OrderStatus.FILLED
        order.fills.append(fill)
        account.apply(fill)
        orders.append(order)
        fills.append(fill)
        cash_after.append(account.cash[currency])
    # each bar's cash: the cash after the last fill at or before it
    segment = np.searchsorted(where, np.arange(len(bars)), side="right")
    mult = units.mark_mult[instrument.key]
    bound = int(np.abs(target).max(initial=0)) * int(closes.max(initial=0)) * 10 * mult
    if bound + max(abs(c) for c in cash_after) < INT64_SAFE:
        cash_at = np.array(cash_after, dtype=np.int64)[segment]
        value = target * (closes * (10 * mult))
        equity = (cash_at + value).tolist()
        exposure = np.abs(value).tolist()
    else:  # beyond int64: the same sums in Python integers
        cash_list = [cash_after[i] for i in segment.tolist()]
        value_list = [
            p * c * 10 * mult for p, c in zip(target.tolist(), closes.tolist(), strict=True)
        ]
        equity = [c + v for c, v in zip(cash_list, value_list, strict=True)]
        exposure = [abs(v) for v in value_list]
    account.set_mark(instrument.key, int(bars.close[-1]) * 10)
    start = int(bars.start_ns[0])
    initial = units.cash(currency, config.cash.get(currency, DEFAULT_CASH))
    curve = Curve(
        ts=[start, *ends.tolist()],
        equity={currency: [initial, *equity]},
        exposure={currency: [0, *exposure]},
        marks={instrument.key: [int(bars.open[0]) * 10, *(bars.close * 10).tolist()]},
    )
    return VectorRun(
        [instrument], units, account, orders, fills, curve, len(bars), start, int(ends[-1])
    )
