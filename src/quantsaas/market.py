"""Latest state per instrument: last trade, rolling 24 h volume and change, recent trades."""

from __future__ import annotations

import collections
from dataclasses import dataclass

from quantsaas.model import Instrument, Ticker, Trade

DAY_NS = 86_400_000_000_000
BUCKET_NS = 60_000_000_000
RECENT_TRADES = 1000


@dataclass
class _MinuteBucket:
    start_ns: int
    first_price: int
    volume: int


class InstrumentState:
    """Running statistics of one instrument, updated per trade in O(1) amortised."""

    def __init__(self, instrument: Instrument, recent_trades: int = RECENT_TRADES) -> None:
        self.instrument = instrument
        self.trades: collections.deque[Trade] = collections.deque(maxlen=recent_trades)
        self.ticker: Ticker | None = None
        self.trade_count = 0
        self._buckets: collections.deque[_MinuteBucket] = collections.deque()
        self._volume_24h = 0

    @property
    def last_trade(self) -> Trade | None:
        return self.trades[-1] if self.trades else None

    def on_trade(self, trade: Trade) -> None:
        self.trades.append(trade)
        self.trade_count += 1
        start = trade.ts_event - trade.ts_event % BUCKET_NS
        buckets = self._buckets
        if buckets and buckets[-1].start_ns >= start:
            buckets[-1].volume += trade.size
        else:
            buckets.append(_MinuteBucket(start, trade.price, trade.size))
        self._volume_24h += trade.size
        self._expire(trade.ts_event)

    def _expire(self, now_ns: int) -> None:
        horizon = now_ns - DAY_NS
        buckets = self._buckets
        while buckets and buckets[0].start_ns + BUCKET_NS <= horizon:
            self._volume_24h -= buckets.popleft().volume

    def volume_24h(self) -> int:
        return self._volume_24h

    def open_24h(self) -> int | None:
        """Price of the first trade inside the rolling 24 h window (minute resolution)."""
        return self._buckets[0].first_price if self._buckets else None


class MarketState:
    """InstrumentState for every instrument the service knows."""

    def __init__(self) -> None:
        self._states: dict[tuple[str, str], InstrumentState] = {}

    def register(self, instrument: Instrument) -> InstrumentState:
        state = self._states.get(instrument.key)
        if state is None:
            state = self._states[instrument.key] = InstrumentState(instrument)
        return state

    def get(self, key: tuple[str, str]) -> InstrumentState | None:
        return self._states.get(key)

    def on_trade(self, trade: Trade) -> None:
        self.register(trade.instrument).on_trade(trade)

    def on_ticker(self, ticker: Ticker) -> None:
        self.register(ticker.instrument).ticker = ticker
