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
    cash_at = np.zeros(len(bars), dtype=object)
    cash_now = account.cash[currency]
    last = 0
    taker = config.fees.taker
    for index in where.tolist():
        cash_at[last:index] = cash_now
        delta = int(change[index])
        price = int(bars.close[index])
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
        cash_now = account.cash[currency]
        last = index
    cash_at[last:] = cash_now
    mult = units.mark_mult[instrument.key]
    bound = int(np.abs(target).max(initial=0)) * int(bars.close.max(initial=0)) * 10 * mult
    cash_bound = max(abs(int(v)) for v in cash_at) if len(cash_at) else 0
    if bound + cash_bound < INT64_SAFE:
        value = target * (bars.close * (10 * mult))
        equity = (cash_at.astype(np.int64) + value).tolist()
        exposure = np.abs(value).tolist()
    else:
        marks = [int(c) * 10 * mult for c in bars.close.tolist()]
        value_list = [int(p) * m for p, m in zip(target.tolist(), marks, strict=True)]
        equity = [int(c) + v for c, v in zip(cash_at.tolist(), value_list, strict=True)]
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
