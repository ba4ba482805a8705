"""OHLCV candles and VWAP from trades, exact: prices and sizes stay raw integers.

A candle covers [start, start + interval) of venue time (`ts_event`), aligned to the Unix epoch,
so daily candles start at 00:00 UTC and 4 h candles at 00, 04, ... UTC. Intervals without trades
have no candle. `notional` is the exact sum of price * size (raw, at price_scale + size_scale
decimals), so VWAP = notional / volume loses nothing until the final Decimal division (28
significant digits).

Live (`CandleBuilder`) and history (`candles_from_trades`) give identical candles for the same
trades in time order. A live trade older than the open candle cannot be applied to a candle that
was already published as closed: it is dropped and counted in `CandleBuilder.late_trades`.
"""

from __future__ import annotations

import collections
import itertools
from collections.abc import Iterable
from dataclasses import dataclass, replace
from decimal import Decimal

from quantsaas.model import Instrument, Side, Trade

NS = 1_000_000_000
INTERVALS: dict[str, int] = {
    "1s": NS,
    "1m": 60 * NS,
    "5m": 300 * NS,
    "15m": 900 * NS,
    "1h": 3600 * NS,
    "4h": 4 * 3600 * NS,
    "1d": 86_400 * NS,
}


def interval_ns(name: str) -> int:
    """`1m` -> nanoseconds; an unknown interval is a ValueError listing the valid ones."""
    try:
        return INTERVALS[name]
    except KeyError:
        raise ValueError(f"unknown interval {name!r}; use one of {', '.join(INTERVALS)}") from None


def vwap_of(instrument: Instrument, notional: int, volume: int) -> Decimal | None:
    """Volume-weighted average price in price units, None without volume."""
    if volume == 0:
        return None
    return Decimal(notional) / Decimal(volume) / Decimal(10) ** instrument.price_scale


@dataclass(frozen=True, slots=True)
class Candle:
    instrument: Instrument
    interval: str
    start_ns: int
    open: int
    high: int
    low: int
    close: int
    volume: int
    buy_volume: int
    """Volume of trades whose aggressor bought."""
    notional: int
    trades: int
    closed: bool
    ts_event: int
    """Venue time of the last trade in the candle."""
    ts_recv: int

    @property
    def end_ns(self) -> int:
        return self.start_ns + INTERVALS[self.interval]

    @property
    def vwap(self) -> Decimal | None:
        return vwap_of(self.instrument, self.notional, self.volume)


def _first(trade: Trade, interval: str, start: int) -> Candle:
    buy = trade.size if trade.side is Side.BUY else 0
    return Candle(
        trade.instrument,
        interval,
        start,
        trade.price,
        trade.price,
        trade.price,
        trade.price,
        trade.size,
        buy,
        trade.price * trade.size,
        1,
        False,
        trade.ts_event,
        trade.ts_recv,
    )


def _add(candle: Candle, trade: Trade) -> Candle:
    price, size = trade.price, trade.size
    return Candle(
        candle.instrument,
        candle.interval,
        candle.start_ns,
        candle.open,
        price if price > candle.high else candle.high,
        price if price < candle.low else candle.low,
        price,
        candle.volume + size,
        candle.buy_volume + (size if trade.side is Side.BUY else 0),
        candle.notional + price * size,
        candle.trades + 1,
        False,
        trade.ts_event,
        trade.ts_recv,
    )


class CandleBuilder:
    """The open candle of one instrument and interval, updated per trade."""

    def __init__(self, instrument: Instrument, interval: str) -> None:
        self.instrument = instrument
        self.interval = interval
        self.width = interval_ns(interval)
        self.current: Candle | None = None
        self.late_trades = 0

    def on_trade(self, trade: Trade) -> Candle | None:
        """Apply a trade; returns the candle it closed, if it opened a new one."""
        start = trade.ts_event - trade.ts_event % self.width
        current = self.current
        if current is None or start > current.start_ns:
            self.current = _first(trade, self.interval, start)
            return None if current is None else replace(current, closed=True)
        if start < current.start_ns:
            self.late_trades += 1
            return None
        self.current = _add(current, trade)
        return None

    def close_due(self, now_ns: int) -> Candle | None:
        """Close the open candle once `now_ns` has reached its end; returns it."""
        current = self.current
        if current is None or now_ns < current.end_ns:
            return None
        self.current = None
        return replace(current, closed=True)


def candles_from_trades(
    trades: Iterable[Trade], interval: str, until_ns: int | None = None
) -> list[Candle]:
    """Candles of stored trades (in time order); a candle is closed if it ends by `until_ns`."""
    width = interval_ns(interval)
    result = []
    for start, group in itertools.groupby(trades, key=lambda t: t.ts_event - t.ts_event % width):
        batch = list(group)
        first, last = batch[0], batch[-1]
        prices = [t.price for t in batch]
        result.append(
            Candle(
                first.instrument,
                interval,
                start,
                first.price,
                max(prices),
                min(prices),
                last.price,
                sum(t.size for t in batch),
                sum(t.size for t in batch if t.side is Side.BUY),
                sum(t.price * t.size for t in batch),
                len(batch),
                until_ns is not None and start + width <= until_ns,
                last.ts_event,
                last.ts_recv,
            )
        )
    for earlier, later in itertools.pairwise(result):
        if later.start_ns < earlier.start_ns:
            raise ValueError("trades must be in time order (ts_event)")
    return [replace(c, closed=True) for c in result[:-1]] + result[-1:]


class SessionVwap:
    """VWAP since the start of the current session (UTC day by default), exact."""

    def __init__(self, instrument: Instrument, session_ns: int = INTERVALS["1d"]) -> None:
        self.instrument = instrument
        self.session_ns = session_ns
        self.session_start: int | None = None
        self.notional = 0
        self.volume = 0

    def on_trade(self, trade: Trade) -> None:
        start = trade.ts_event - trade.ts_event % self.session_ns
        if self.session_start is None or start > self.session_start:
            self.session_start, self.notional, self.volume = start, 0, 0
        elif start < self.session_start:
            return  # a trade of a finished session
        self.notional += trade.price * trade.size
        self.volume += trade.size

    @property
    def value(self) -> Decimal | None:
        return vwap_of(self.instrument, self.notional, self.volume)


class RollingVwap:
    """VWAP of the trades in the last `window_ns` of venue time, exact, O(1) amortised.

    With a `resolution_ns`, trades are summed into slots of that width (memory bounded by
    window / resolution whatever the trade rate) and a slot leaves the window as a whole, once
    its start is `window_ns` old; without one, each trade leaves on its own.
    """

    def __init__(self, instrument: Instrument, window_ns: int, resolution_ns: int = 0) -> None:
        if window_ns <= 0 or resolution_ns < 0:
            raise ValueError("the VWAP window must be positive (and the resolution not negative)")
        self.instrument = instrument
        self.window_ns = window_ns
        self.resolution_ns = resolution_ns
        self._slots: collections.deque[list[int]] = collections.deque()
        self.notional = 0
        self.volume = 0

    def on_trade(self, trade: Trade) -> None:
        notional, ts, width = trade.price * trade.size, trade.ts_event, self.resolution_ns
        key = ts - ts % width if width else ts
        slots = self._slots
        if width and slots and slots[-1][0] == key:
            slots[-1][1] += notional
            slots[-1][2] += trade.size
        else:
            slots.append([key, notional, trade.size])
        self.notional += notional
        self.volume += trade.size
        self.expire(ts)

    def expire(self, now_ns: int) -> None:
        """Forget trades (slots) at or before `now_ns - window_ns`."""
        slots, cutoff = self._slots, now_ns - self.window_ns
        while slots and slots[0][0] <= cutoff:
            _, notional, size = slots.popleft()
            self.notional -= notional
            self.volume -= size

    @property
    def value(self) -> Decimal | None:
        return vwap_of(self.instrument, self.notional, self.volume)
