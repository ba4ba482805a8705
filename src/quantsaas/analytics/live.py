"""The live analytics service: candles, VWAP, OFI, VPIN and option greeks on the engine's streams.

A bus consumer declared at the composition root (runtime.py): it is handed every published
trade, book and option-ticker envelope (`on_envelope`) and publishes derived events back on the
bus, all under the topic (channel, venue, symbol) of the instrument they describe (options under
their underlying, e.g. (greeks, sim, BTC/USD)):

* `candles`: the open candle of every interval at most every `publish_s`, and each candle once
  more when it closes (a trade in a later interval, or the clock past its end);
* `ofi`: each closed OFI bucket (`ofi_levels` levels, `ofi_bucket_s` wide);
* `vpin`: each completed VPIN volume bucket (aggressor classification);
* `options`: the option tickers themselves (published by the engine);
* `greeks`: our Deribit-convention greeks of each option ticker, beside the venue's.

VPIN needs a bucket size V in raw size units: `vpin_bucket_volume` per symbol, else one tenth
of the volume of the first `VPIN_CALIBRATION_TRADES` trades (those trades are then replayed,
so nothing is lost). Nothing here may break the feed: a failing update is logged and skipped.

Time comes from the injected clock: wall time live (a background job ticks every `publish_s`),
event time on replay (`event_time=True`: the ticks are taken in-band, before each event, at the
same `publish_s` steps of recorded time), so a replayed day gives the live numbers.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from quantsaas.analytics.candles import (
    INTERVALS,
    Candle,
    CandleBuilder,
    RollingVwap,
    SessionVwap,
)
from quantsaas.analytics.events import OfiUpdate, OptionGreeks, VpinUpdate
from quantsaas.analytics.greeks import option_greeks
from quantsaas.analytics.ofi import BookState, OfiBucket, OfiStream
from quantsaas.analytics.vpin import VpinConfig, VpinStream
from quantsaas.book import L2Book
from quantsaas.bus import Envelope, Topic
from quantsaas.channels import BOOK, OPTIONS, TRADES
from quantsaas.clock import Clock, WallClock
from quantsaas.model import (
    BookDelta,
    BookSnapshot,
    Instrument,
    MarketEvent,
    OptionTicker,
    Side,
    Stamped,
    Trade,
)

log = logging.getLogger(__name__)

CANDLES, OFI, VPIN, GREEKS = "candles", "ofi", "vpin", "greeks"
INPUTS = (TRADES, BOOK, OPTIONS)
"""The channels the service consumes."""
Publish = Callable[[Topic, Stamped], object]
InitialState = Callable[[Instrument], Stamped | None]
NS = 1_000_000_000
VPIN_CALIBRATION_TRADES = 100
HISTORY = 1000
"""Closed candles kept per interval, and OFI / VPIN buckets kept per instrument."""


@dataclass(frozen=True)
class AnalyticsConfig:
    ofi_levels: int = 5
    ofi_bucket_s: float = 1.0
    vpin_window: int = 50
    vpin_bucket_volume: dict[str, int] = field(default_factory=dict)
    """Raw size units per symbol (`BTC/USD`); others are calibrated from their first trades."""
    vwap_windows_s: tuple[int, ...] = (60, 300, 3600)
    publish_s: float = 0.5


class InstrumentAnalytics:
    """Everything computed for one (spot or perpetual) instrument."""

    def __init__(self, instrument: Instrument, config: AnalyticsConfig) -> None:
        self.instrument = instrument
        self.candles = {name: CandleBuilder(instrument, name) for name in INTERVALS}
        self.closed: dict[str, collections.deque[Candle]] = {
            name: collections.deque(maxlen=HISTORY) for name in INTERVALS
        }
        self.dirty: set[str] = set()
        self.session_vwap = SessionVwap(instrument)
        self.rolling_vwap = {w: RollingVwap(instrument, w * NS, NS) for w in config.vwap_windows_s}
        self.ofi = OfiStream(config.ofi_levels, round(config.ofi_bucket_s * NS))
        self.ofi_buckets: collections.deque[OfiUpdate] = collections.deque(maxlen=HISTORY)
        self.vpin: VpinStream | None = None
        self.vpin_buckets: collections.deque[VpinUpdate] = collections.deque(maxlen=HISTORY)
        self.vpin_pending: list[Trade] = []
        size = config.vpin_bucket_volume.get(instrument.symbol)
        if size is not None:
            self.vpin = VpinStream(VpinConfig(size, config.vpin_window))


class AnalyticsService:
    """Analytics of `instruments`; reads the engine's books (exact at delivery, see bus.py)."""

    def __init__(
        self,
        instruments: Mapping[tuple[str, str], Instrument],
        books: Mapping[tuple[str, str], L2Book],
        publish: Publish,
        config: AnalyticsConfig | None = None,
        clock: Clock | None = None,
        event_time: bool = False,
    ) -> None:
        self.config = config or AnalyticsConfig()
        self.books = books
        self.publish = publish
        self.clock = clock or WallClock()
        self.event_time = event_time
        self._tick_ns = max(1, round(self.config.publish_s * NS))
        self._next_tick: int | None = None
        self.instruments: dict[tuple[str, str], InstrumentAnalytics] = {
            key: InstrumentAnalytics(instrument, self.config)
            for key, instrument in instruments.items()
        }
        self.options: dict[tuple[str, str], dict[str, OptionGreeks]] = {}
        """(venue, underlying) -> option name -> latest ticker with our greeks."""
        self.errors = 0

    def channels(self) -> dict[str, InitialState | None]:
        """The stream channels this service serves, with each one's initial state."""
        return {
            CANDLES: self._open_candle,
            OFI: self._last_ofi,
            VPIN: self._last_vpin,
            GREEKS: None,
            OPTIONS: None,
        }

    def on_envelope(self, envelope: Envelope) -> None:
        if self.event_time:
            now = self.clock.now_ns()
            due = self._next_tick
            if due is None:
                self._next_tick = now + self._tick_ns
            elif now >= due:
                self.tick(due)
                self._next_tick = due + self._tick_ns * max(1, (now - due) // self._tick_ns)
        self.on_event(envelope.event)  # type: ignore[arg-type]

    def on_event(self, event: MarketEvent) -> None:
        try:
            if isinstance(event, Trade):
                self._on_trade(event)
            elif isinstance(event, BookDelta | BookSnapshot):
                self._on_book(event)
            elif isinstance(event, OptionTicker):
                self._on_option(event)
        except Exception:
            self.errors += 1
            log.exception("analytics update failed on %s", type(event).__name__)

    def _publish(self, channel: str, instrument: Instrument, event: Stamped) -> None:
        self.publish((channel, *instrument.key), event)

    def _on_trade(self, trade: Trade) -> None:
        state = self.instruments.get(trade.instrument.key)
        if state is None:
            return
        for name, builder in state.candles.items():
            closed = builder.on_trade(trade)
            if closed is not None:
                state.closed[name].append(closed)
                self._publish(CANDLES, trade.instrument, closed)
            state.dirty.add(name)
        state.session_vwap.on_trade(trade)
        for rolling in state.rolling_vwap.values():
            rolling.on_trade(trade)
        self._on_vpin_trade(state, trade)

    def _on_vpin_trade(self, state: InstrumentAnalytics, trade: Trade) -> None:
        if state.vpin is None:
            state.vpin_pending.append(trade)
            if len(state.vpin_pending) < VPIN_CALIBRATION_TRADES:
                return
            volume = sum(t.size for t in state.vpin_pending)
            size = max(trade.instrument.lot_size, volume // 10)
            state.vpin = VpinStream(VpinConfig(size, self.config.vpin_window))
            pending, state.vpin_pending = state.vpin_pending, []
        else:
            pending = [trade]
        stream = state.vpin
        for item in pending:
            price = item.price / 10**item.instrument.price_scale
            for bucket in stream.on_trade(price, item.size, item.side is Side.BUY, item.ts_event):
                update = VpinUpdate(
                    item.instrument,
                    bucket,
                    stream.config.bucket_volume,
                    stream.config.window,
                    item.ts_event,
                    item.ts_recv,
                )
                state.vpin_buckets.append(update)
                self._publish(VPIN, item.instrument, update)

    def _on_book(self, event: BookDelta | BookSnapshot) -> None:
        state = self.instruments.get(event.instrument.key)
        if state is None:
            return
        if isinstance(event, BookSnapshot):
            state.ofi.reset()
        book = self.books[event.instrument.key]
        levels = state.ofi.levels
        book_state = BookState.from_levels(book.bids(levels), book.asks(levels), levels)
        closed = state.ofi.on_state(book_state, event.ts_event)
        if closed is not None:
            self._ofi_closed(state, closed, event.ts_event, event.ts_recv)

    def _ofi_closed(
        self, state: InstrumentAnalytics, bucket: OfiBucket, ts: int, recv: int
    ) -> None:
        update = OfiUpdate(state.instrument, bucket, ts, recv)
        state.ofi_buckets.append(update)
        self._publish(OFI, state.instrument, update)

    def _on_option(self, ticker: OptionTicker) -> None:
        option = ticker.instrument.option
        if option is None:
            return
        ours = option_greeks(
            option.kind,
            ticker.underlying_price,
            float(option.strike_decimal),
            option.expiry_ns,
            ticker.ts_event,
            ticker.mark_iv / 100,
            ticker.interest_rate,
        )
        greeks = OptionGreeks(ticker.instrument, ticker, ours, ticker.ts_event, ticker.ts_recv)
        venue = ticker.instrument.venue
        chain = self.options.setdefault((venue, option.underlying), {})
        chain[ticker.instrument.symbol] = greeks
        self.publish((GREEKS, venue, option.underlying), greeks)

    def tick(self, now: int) -> None:
        """Publish changed open candles; close candles and OFI buckets whose time is over."""
        grace = NS // 5
        for state in self.instruments.values():
            for name, builder in state.candles.items():
                closed = builder.close_due(now - grace)
                if closed is not None:
                    state.closed[name].append(closed)
                    self._publish(CANDLES, state.instrument, closed)
                elif name in state.dirty and builder.current is not None:
                    self._publish(CANDLES, state.instrument, builder.current)
            state.dirty.clear()
            start = state.ofi.bucket_start
            if start is not None and now - grace >= start + state.ofi.bucket_ns:
                bucket = state.ofi.flush()
                if bucket is not None:
                    self._ofi_closed(state, bucket, now, now)
            for rolling in state.rolling_vwap.values():
                rolling.expire(now)
        for chain in self.options.values():
            for name in [
                n
                for n, g in chain.items()
                if g.instrument.option is not None and g.instrument.option.expiry_ns <= now
            ]:
                del chain[name]

    async def run_clock(self) -> None:
        """Background job (live): tick every `publish_s` of wall time."""
        while True:
            await asyncio.sleep(self.config.publish_s)
            try:
                self.tick(self.clock.now_ns())
            except Exception:
                self.errors += 1
                log.exception("analytics clock failed")

    def state(self, instrument: Instrument) -> InstrumentAnalytics:
        return self.instruments[instrument.key]

    def _open_candle(self, instrument: Instrument) -> Stamped | None:
        state = self.instruments.get(instrument.key)
        return None if state is None else state.candles["1m"].current

    def _last_ofi(self, instrument: Instrument) -> Stamped | None:
        state = self.instruments.get(instrument.key)
        return state.ofi_buckets[-1] if state and state.ofi_buckets else None

    def _last_vpin(self, instrument: Instrument) -> Stamped | None:
        state = self.instruments.get(instrument.key)
        return state.vpin_buckets[-1] if state and state.vpin_buckets else None
