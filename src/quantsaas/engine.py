"""The engine: feeds -> exact books -> market state -> bus.

Every event from every feed passes through `Engine.on_event`, on the event loop, in order.
Book events are applied to that instrument's `L2Book` first and published only if the book
accepted them, so no crossed or unsynchronised book ever reaches a subscriber. When a book
rejects an update the engine flags it invalid, drops deltas until the feed's fresh snapshot
arrives, and asks the feed to resync.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from quantsaas.book import L2Book
from quantsaas.bus import Bus, Topic
from quantsaas.errors import BookError, BookNotReady, UnknownInstrument
from quantsaas.feeds.base import Feed
from quantsaas.market import InstrumentState, MarketState
from quantsaas.model import (
    BookDelta,
    BookSnapshot,
    Instrument,
    MarketEvent,
    OptionTicker,
    Stamped,
    Ticker,
    Trade,
    symbol_from_text,
)

log = logging.getLogger(__name__)

TRADES = "trades"
BOOK = "book"
TICKER = "ticker"
OPTIONS = "options"
"""Option tickers, published under their underlying: topic (options, venue, BTC/USD); the
analytics service registers the channel."""
CHANNELS = (TRADES, BOOK, TICKER)

Listener = Callable[[MarketEvent], None]
"""Called with every event the engine accepted, after it was published."""
InitialState = Callable[[Instrument], Stamped | None]
"""What a new subscriber of a channel receives first (the book's snapshot, the open candle)."""
RelayedState = Callable[[Topic], tuple[int, list[str]] | None]
"""In an API process behind Redis: a topic's encoded initial messages and the seq they reach
(WAITING: none yet, send the topic's messages only once there are)."""
WAITING = -1


class Engine:
    """Owns the books and market state of every instrument the feeds serve."""

    def __init__(self, feeds: Sequence[Feed], bus: Bus | None = None) -> None:
        self.feeds = tuple(feeds)
        self.bus = bus or Bus()
        self.market = MarketState()
        self.instruments: dict[tuple[str, str], Instrument] = {}
        self.books: dict[tuple[str, str], L2Book] = {}
        self._feed_of: dict[tuple[str, str], Feed] = {}
        self.listeners: list[Listener] = []
        self.channels: dict[str, InitialState | None] = {
            TRADES: None,
            BOOK: self._book_snapshot,
            TICKER: None,
        }
        self._background: list[Callable[[], Coroutine[Any, Any, None]]] = []
        self.relayed_state: RelayedState | None = None
        self.rejected_deltas = 0
        self.resyncs_requested = 0
        for feed in self.feeds:
            for instrument in feed.instruments:
                self.instruments[instrument.key] = instrument
                self.books[instrument.key] = L2Book(instrument)
                self.market.register(instrument)
                self._feed_of[instrument.key] = feed
            feed.on_books_stale = self._books_stale

    def register_channel(self, name: str, initial: InitialState | None = None) -> None:
        """Make `name` subscribable on the stream (derived data published by a service)."""
        self.channels[name] = initial

    def add_background(self, job: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run `job()` beside the feeds for the engine's lifetime."""
        self._background.append(job)

    async def run(self) -> None:
        """Run every feed until cancelled; a feed that crashes is logged, the others go on."""
        async with asyncio.TaskGroup() as group:
            for feed in self.feeds:
                group.create_task(self._run_feed(feed), name=f"feed:{feed.venue}")
            for job in self._background:
                group.create_task(job(), name=f"job:{getattr(job, '__name__', 'job')}")

    async def _run_feed(self, feed: Feed) -> None:
        try:
            await feed.run(self.on_event)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("feed %s stopped with an error", feed.venue, extra={"venue": feed.venue})

    def on_event(self, event: MarketEvent) -> None:
        instrument = event.instrument
        key = instrument.key
        if isinstance(event, BookDelta):
            book = self.books[key]
            try:
                book.apply_delta(event)
            except BookNotReady:
                self.rejected_deltas += 1
                return
            except BookError as exc:
                self._resync(book, str(exc))
                return
            self.bus.publish((BOOK, *key), event)
        elif isinstance(event, Trade):
            self.market.on_trade(event)
            self.bus.publish((TRADES, *key), event)
        elif isinstance(event, BookSnapshot):
            book = self.books[key]
            try:
                book.apply_snapshot(event)
            except BookError as exc:
                self._resync(book, str(exc))
                return
            self.bus.publish((BOOK, *key), event)
        elif isinstance(event, Ticker):
            self.market.on_ticker(event)
            self.bus.publish((TICKER, *key), event)
        elif isinstance(event, OptionTicker):
            option = instrument.option
            if option is None:
                log.warning(
                    "option ticker for non-option %s %s dropped",
                    *key,
                    extra={"venue": key[0], "symbol": key[1]},
                )
                return
            self.bus.publish((OPTIONS, instrument.venue, option.underlying), event)
        for listener in self.listeners:
            listener(event)

    def _books_stale(self, instruments: Sequence[Instrument], reason: str) -> None:
        """A feed lost its connection or sequence: stop serving these books until new snapshots."""
        for instrument in instruments:
            self.books[instrument.key].invalidate()
        log.info("%d book(s) invalidated: %s", len(instruments), reason)

    def _resync(self, book: L2Book, reason: str) -> None:
        book.invalidate()
        self.resyncs_requested += 1
        venue, symbol = book.instrument.key
        log.warning(
            "book rejected, resync requested: %s",
            reason,
            extra={"venue": venue, "symbol": symbol},
        )
        self._feed_of[book.instrument.key].request_resync(book.instrument, reason)

    def resolve(self, symbol: str, venue: str | None = None) -> list[Instrument]:
        """Instruments matching a symbol (any accepted spelling), optionally on one venue."""
        canonical = symbol_from_text(symbol)
        found = [
            instrument
            for (inst_venue, inst_symbol), instrument in self.instruments.items()
            if inst_symbol == canonical and (venue is None or inst_venue == venue)
        ]
        if not found:
            where = f" on venue {venue!r}" if venue else ""
            raise UnknownInstrument(f"unknown symbol {symbol!r}{where}")
        return found

    def instrument(self, venue: str, symbol: str) -> Instrument:
        return self.resolve(symbol, venue)[0]

    def state(self, instrument: Instrument) -> InstrumentState:
        return self.market.register(instrument)

    def book_topic(self, instrument: Instrument) -> Topic:
        return (BOOK, *instrument.key)

    def _book_snapshot(self, instrument: Instrument) -> Stamped | None:
        book = self.books[instrument.key]
        return book.to_snapshot() if book.valid else None
