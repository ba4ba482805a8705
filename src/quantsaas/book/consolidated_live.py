"""The consolidated markets on a running engine: channels `bbo`, `consolidated_book`, `tape`.

A bus consumer declared at the composition root (runtime.py): each consolidated market gets an
instrument on the pseudo venue `consolidated` (the root adds them and their merged `L2Book`s to
the read model, so `/ws` subscriptions and the per-venue REST routes resolve `BTC/USD` there);
for every book envelope of a member venue it recomputes the BBO (O(venues)) and publishes it when
it changed, and puts each trade on the tape at once. The merged book is
published at most every `publish_s` while it changes. A background job also republishes when a
venue's book becomes invalid or valid again without an event (a venue going down removes its
levels at once). Nothing here may break the feed: a failing update is logged and skipped.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from quantsaas.book.consolidated import (
    CONSOLIDATED,
    Bbo,
    ConsolidatedBook,
    ConsolidatedMarket,
    QuoteEquivalence,
    TapeTrade,
    VenueLevel,
    build_markets,
)
from quantsaas.book.l2 import L2Book
from quantsaas.bus import Envelope, Topic
from quantsaas.channels import BOOK, TRADES
from quantsaas.errors import BookError
from quantsaas.model import (
    BookDelta,
    BookSnapshot,
    Instrument,
    Level,
    MarketEvent,
    Stamped,
    Trade,
)

log = logging.getLogger(__name__)

BBO, CONSOLIDATED_BOOK, TAPE = "bbo", "consolidated_book", "tape"
INPUTS = (TRADES, BOOK)
"""The channels the service consumes."""
Publish = Callable[[Topic, Stamped], object]
InitialState = Callable[[Instrument], Stamped | None]
TAPE_HISTORY = 1000


@dataclass(frozen=True)
class ConsolidatedConfig:
    equivalence: QuoteEquivalence = QuoteEquivalence()
    depth: int = 20
    publish_s: float = 0.1
    min_venues: int = 2
    """A pair quoted on fewer venues gets no consolidated market."""


class MarketState:
    def __init__(self, market: ConsolidatedMarket) -> None:
        self.market = market
        self.bbo: Bbo | None = None
        self.book_dirty = True
        self.venues: tuple[str, ...] = ()
        self.tape: collections.deque[TapeTrade] = collections.deque(maxlen=TAPE_HISTORY)
        self.crossed_events = 0


class ConsolidatedService:
    def __init__(
        self, books: Iterable[L2Book], publish: Publish, config: ConsolidatedConfig
    ) -> None:
        self.publish = publish
        self.config = config
        markets = build_markets(books, config.equivalence)
        self.markets = {
            pair: MarketState(market)
            for pair, market in markets.items()
            if len(market.members) >= config.min_venues
        }
        self._of: dict[tuple[str, str], MarketState] = {}
        for state in self.markets.values():
            for member in state.market.members:
                self._of[member.book.instrument.key] = state
        # the pseudo venue: resolvable on the stream and by the per-venue REST routes; its
        # L2Book holds the merged levels (sizes summed per price), invalid while crossed
        self.books: dict[tuple[str, str], L2Book] = {
            state.market.instrument.key: L2Book(state.market.instrument)
            for state in self.markets.values()
        }
        self.failures = 0
        self.sequence = 0

    def market(self, instrument: Instrument) -> MarketState | None:
        if instrument.venue == CONSOLIDATED:
            return self.markets.get(instrument.symbol)
        return self._of.get(instrument.key)

    def channels(self) -> dict[str, InitialState | None]:
        """The stream channels this service serves, with each one's initial state."""
        return {BBO: self.initial_bbo, CONSOLIDATED_BOOK: self.initial_book, TAPE: None}

    def on_envelope(self, envelope: Envelope) -> None:
        self.on_event(envelope.event)  # type: ignore[arg-type]

    def on_event(self, event: MarketEvent) -> None:
        state = self._of.get(event.instrument.key)
        if state is None:
            return
        try:
            if isinstance(event, BookSnapshot | BookDelta):
                state.book_dirty = True
                self._publish_bbo(state)
            elif isinstance(event, Trade):
                tape = state.market.tape(event)
                if tape is not None:
                    state.tape.append(tape)
                    self.publish((TAPE, *tape.instrument.key), tape)
        except Exception:  # never break the feed
            self.failures += 1
            log.exception("consolidated update failed")

    def _publish_bbo(self, state: MarketState) -> None:
        bbo = state.market.bbo()
        previous = state.bbo
        state.venues = bbo.venues
        if previous is not None and previous.key() == bbo.key():
            return
        state.bbo = bbo
        if bbo.crossed and not (previous is not None and previous.crossed):
            state.crossed_events += 1
        self.publish((BBO, *bbo.instrument.key), bbo)

    def book(self, state: MarketState, depth: int | None = None) -> ConsolidatedBook:
        return state.market.book(self.config.depth if depth is None else depth)

    async def run(self) -> None:
        """Publish changed merged books, and notice venues going down or coming back."""
        while True:
            await asyncio.sleep(self.config.publish_s)
            for state in self.markets.values():
                try:
                    if state.market.venues() != state.venues:
                        state.book_dirty = True
                        self._publish_bbo(state)
                    if state.book_dirty:
                        state.book_dirty = False
                        book = self.book(state)
                        self.publish((CONSOLIDATED_BOOK, *book.instrument.key), book)
                        self._summed(state, book)
                except Exception:
                    self.failures += 1
                    log.exception("consolidated publish failed")

    def _summed(self, state: MarketState, book: ConsolidatedBook) -> None:
        """Keep the pseudo venue's L2Book (served by /api/v1/book/consolidated/...) as the
        merged levels with sizes summed per price; a crossed or locked market leaves it invalid."""
        self.sequence += 1
        snapshot = BookSnapshot(
            book.instrument,
            _summed(book.bids),
            _summed(book.asks),
            self.sequence,
            book.ts_event,
            book.ts_recv,
        )
        l2 = self.books[book.instrument.key]
        try:
            l2.apply_snapshot(snapshot)
        except BookError:
            return
        self.publish((BOOK, *book.instrument.key), snapshot)

    def initial_bbo(self, instrument: Instrument) -> Stamped | None:
        state = self.markets.get(instrument.symbol) if instrument.venue == CONSOLIDATED else None
        return None if state is None else state.market.bbo()

    def initial_book(self, instrument: Instrument) -> Stamped | None:
        state = self.markets.get(instrument.symbol) if instrument.venue == CONSOLIDATED else None
        return None if state is None else self.book(state)


def _summed(levels: tuple[VenueLevel, ...]) -> tuple[Level, ...]:
    out: list[Level] = []
    for level in levels:
        if out and out[-1][0] == level.price:
            out[-1] = (level.price, out[-1][1] + level.size)
        else:
            out.append((level.price, level.size))
    return tuple(out)
