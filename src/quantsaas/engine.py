"""The engine: feeds -> exact books -> market state -> bus.

Every event from every feed passes through `Engine.on_event`, on the event loop, in order.
Book events are applied to that instrument's `L2Book` first and published only if the book
accepted them, so no crossed or unsynchronised book ever reaches a subscriber. When a book
rejects an update the engine flags it invalid, drops deltas until the feed's fresh snapshot
arrives, and asks the feed to resync. A feed that lost its connection or sequence says so with
a `BooksStale` event: those books stop being served until fresh snapshots.

The engine knows nothing downstream: it publishes to the `publish` callable it is given (the
bus), and tells the clock each accepted event's receive time. Everything else is wired at the
composition root (runtime.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from quantsaas.book import L2Book
from quantsaas.bus import Topic
from quantsaas.channels import BOOK, OPTIONS, TICKER, TRADES
from quantsaas.clock import Clock, WallClock
from quantsaas.errors import BookError, BookNotReady
from quantsaas.feeds.base import BooksStale, Feed
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
)

log = logging.getLogger(__name__)

Publish = Callable[[Topic, Stamped], object]
"""Where the engine sends what it accepted: the bus (`Bus.publish`)."""


class Engine:
    """Owns the books and market state of every instrument the feeds serve."""

    def __init__(self, feeds: Sequence[Feed], publish: Publish, clock: Clock | None = None) -> None:
        self.feeds = tuple(feeds)
        self._publish = publish
        clock = clock or WallClock()
        # live, wall time needs no telling: skip the call on the hot path
        self._observe = None if isinstance(clock, WallClock) else clock.observe
        self.market = MarketState()
        self.instruments: dict[tuple[str, str], Instrument] = {}
        self.books: dict[tuple[str, str], L2Book] = {}
        self._feed_of: dict[tuple[str, str], Feed] = {}
        self.rejected_deltas = 0
        self.resyncs_requested = 0
        for feed in self.feeds:
            self.adopt(feed, feed.instruments)

    def adopt(self, feed: Feed, instruments: Sequence[Instrument]) -> None:
        """Books and market state for a feed's instruments (also ones it learns later: a chain
        fetched in its run loop, wired by the composition root through `Feed.on_instruments`)."""
        for instrument in instruments:
            self.instruments[instrument.key] = instrument
            self.books[instrument.key] = L2Book(instrument)
            self.market.register(instrument)
            self._feed_of[instrument.key] = feed

    async def run(self) -> None:
        """Run every feed until cancelled; a feed that crashes is logged, the others go on."""
        async with asyncio.TaskGroup() as group:
            for feed in self.feeds:
                group.create_task(self._run_feed(feed), name=f"feed:{feed.venue}")

    async def _run_feed(self, feed: Feed) -> None:
        try:
            await feed.run(self.on_event)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("feed %s stopped with an error", feed.venue, extra={"venue": feed.venue})

    def on_event(self, event: MarketEvent | BooksStale) -> None:
        if isinstance(event, BooksStale):
            self._books_stale(event.instruments, event.reason)
            return
        if self._observe is not None:
            self._observe(event.ts_recv)
        publish = self._publish
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
            publish((BOOK, *key), event)
        elif isinstance(event, Trade):
            self.market.on_trade(event)
            publish((TRADES, *key), event)
        elif isinstance(event, BookSnapshot):
            book = self.books[key]
            try:
                book.apply_snapshot(event)
            except BookError as exc:
                self._resync(book, str(exc))
                return
            publish((BOOK, *key), event)
        elif isinstance(event, Ticker):
            self.market.on_ticker(event)
            publish((TICKER, *key), event)
        elif isinstance(event, OptionTicker):
            option = instrument.option
            if option is None:
                log.warning(
                    "option ticker for non-option %s %s dropped",
                    *key,
                    extra={"venue": key[0], "symbol": key[1]},
                )
                return
            publish((OPTIONS, instrument.venue, option.underlying), event)

    def state(self, instrument: Instrument) -> InstrumentState:
        """The market state (last trades, 24 h figures) of one of the engine's instruments."""
        return self.market.register(instrument)

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
