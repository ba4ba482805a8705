"""One consolidated market per canonical pair across venues: merged L2, BBO, crossed markets.

Pure and synchronous: a `ConsolidatedMarket` reads the venues' live `L2Book`s (the engine's) when
asked, so a venue whose book is invalid (disconnected, resyncing, in maintenance) drops out at
once. Prices and sizes are rescaled exactly to the market's scale (the finest of its venues);
every level keeps its venue, so equal prices on two venues are two levels.

Quote currencies are merged only through an explicit `QuoteEquivalence` (e.g. USD, USDT, USDC as
one group, named after its first member); without one, BTC/USD and BTC/USDT are two markets.
Options never join a consolidated market.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from quantsaas.book.l2 import L2Book
from quantsaas.errors import ConfigError
from quantsaas.model import Instrument, Level, Trade

CONSOLIDATED = "consolidated"
"""The venue name of consolidated markets (topics `(bbo, consolidated, BTC/USD)`)."""


@dataclass(frozen=True)
class QuoteEquivalence:
    """Groups of quote currencies treated as one; the first of a group names the market."""

    groups: tuple[tuple[str, ...], ...] = ()

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for group in self.groups:
            if len(group) < 2:
                raise ConfigError(f"a quote equivalence needs two currencies or more: {group}")
            if seen & set(group):
                raise ConfigError(f"quote currencies in two equivalence groups: {group}")
            seen.update(group)

    @classmethod
    def of(cls, currencies: Sequence[str]) -> QuoteEquivalence:
        """One group from a configured list (`USD,USDT,USDC`); empty: no merging."""
        group = tuple(dict.fromkeys(c.strip().upper() for c in currencies if c.strip()))
        return cls((group,) if group else ())

    def market_quote(self, quote: str) -> str:
        for group in self.groups:
            if quote in group:
                return group[0]
        return quote


def pair_of(instrument: Instrument, equivalence: QuoteEquivalence) -> str | None:
    """The consolidated market an instrument belongs to (`BTC/USD`), None for options."""
    if instrument.option is not None or instrument.venue == CONSOLIDATED:
        return None
    return f"{instrument.base}/{equivalence.market_quote(instrument.quote)}"


@dataclass(frozen=True, slots=True)
class VenueLevel:
    price: int
    size: int
    venue: str


@dataclass(frozen=True, slots=True)
class Bbo:
    """Best bid and offer across venues, each with its venue; `crossed`: bid > ask (an
    arbitrage between two venues), `locked`: bid == ask."""

    instrument: Instrument
    bid: VenueLevel | None
    ask: VenueLevel | None
    venues: tuple[str, ...]
    """Venues whose books are valid and counted."""
    ts_event: int
    ts_recv: int

    @property
    def spread(self) -> int | None:
        """Cross-venue spread (ask - bid, negative when crossed), raw at the market's scale."""
        if self.bid is None or self.ask is None:
            return None
        return self.ask.price - self.bid.price

    @property
    def crossed(self) -> bool:
        spread = self.spread
        return spread is not None and spread < 0

    @property
    def locked(self) -> bool:
        return self.spread == 0

    def key(self) -> tuple[VenueLevel | None, VenueLevel | None, tuple[str, ...]]:
        return (self.bid, self.ask, self.venues)


@dataclass(frozen=True, slots=True)
class ConsolidatedBook:
    instrument: Instrument
    bids: tuple[VenueLevel, ...]
    """Best first; ties in price keep venue order."""
    asks: tuple[VenueLevel, ...]
    venues: tuple[str, ...]
    ts_event: int
    ts_recv: int


@dataclass(frozen=True, slots=True)
class TapeTrade:
    """A venue's trade on the consolidated tape, rescaled to the market's scale."""

    instrument: Instrument
    venue: str
    price: int
    size: int
    trade: Trade
    ts_event: int
    ts_recv: int


class _Member:
    __slots__ = ("book", "venue", "price_factor", "size_factor")

    def __init__(self, book: L2Book, price_scale: int, size_scale: int) -> None:
        inst = book.instrument
        self.book = book
        self.venue = inst.venue
        self.price_factor = 10 ** (price_scale - inst.price_scale)
        self.size_factor = 10 ** (size_scale - inst.size_scale)


class ConsolidatedMarket:
    """The venues' books of one canonical pair, read live."""

    def __init__(self, pair: str, books: Sequence[L2Book]) -> None:
        if not books:
            raise ConfigError(f"consolidated market {pair} needs at least one venue book")
        venues = [book.instrument.venue for book in books]
        if len(set(venues)) != len(venues):
            raise ConfigError(f"consolidated market {pair}: two books from one venue: {venues}")
        self.pair = pair
        base, _, quote = pair.partition("/")
        self.price_scale = max(book.instrument.price_scale for book in books)
        self.size_scale = max(book.instrument.size_scale for book in books)
        self.instrument = Instrument(
            CONSOLIDATED, base, quote, pair, self.price_scale, self.size_scale, 1, 1
        )
        self.members = [_Member(book, self.price_scale, self.size_scale) for book in books]
        self._by_venue = {m.venue: m for m in self.members}

    def live(self) -> list[_Member]:
        return [member for member in self.members if member.book.valid]

    def venues(self) -> tuple[str, ...]:
        return tuple(member.venue for member in self.live())

    def stamps(self, members: Iterable[_Member]) -> tuple[int, int]:
        books = [m.book for m in members]
        return (
            max((b.ts_event for b in books), default=0),
            max((b.ts_recv for b in books), default=0),
        )

    def bbo(self) -> Bbo:
        """O(venues): each valid book's best levels; ties go to the first venue listed."""
        bid: VenueLevel | None = None
        ask: VenueLevel | None = None
        live = self.live()
        for m in live:
            best_bid, best_ask = m.book.best_bid(), m.book.best_ask()
            if best_bid is not None and (bid is None or best_bid[0] * m.price_factor > bid.price):
                bid = VenueLevel(best_bid[0] * m.price_factor, best_bid[1] * m.size_factor, m.venue)
            if best_ask is not None and (ask is None or best_ask[0] * m.price_factor < ask.price):
                ask = VenueLevel(best_ask[0] * m.price_factor, best_ask[1] * m.size_factor, m.venue)
        ts_event, ts_recv = self.stamps(live)
        return Bbo(self.instrument, bid, ask, tuple(m.venue for m in live), ts_event, ts_recv)

    def _side(
        self, members: list[_Member], bids: bool, depth: int | None
    ) -> tuple[VenueLevel, ...]:
        streams = []
        for m in members:
            levels: list[Level] = m.book.bids(depth) if bids else m.book.asks(depth)
            pf, sf, venue = m.price_factor, m.size_factor, m.venue
            streams.append([VenueLevel(p * pf, s * sf, venue) for p, s in levels])
        if bids:
            merged = heapq.merge(*streams, key=lambda level: -level.price)
        else:
            merged = heapq.merge(*streams, key=lambda level: level.price)
        out = tuple(merged)
        return out if depth is None else out[:depth]

    def book(self, depth: int | None = None) -> ConsolidatedBook:
        """The merged book (each venue's best `depth` levels, merged, cut to `depth`)."""
        live = self.live()
        ts_event, ts_recv = self.stamps(live)
        return ConsolidatedBook(
            self.instrument,
            self._side(live, True, depth),
            self._side(live, False, depth),
            tuple(m.venue for m in live),
            ts_event,
            ts_recv,
        )

    def tape(self, trade: Trade) -> TapeTrade | None:
        member = self._by_venue.get(trade.instrument.venue)
        if member is None or member.book.instrument != trade.instrument:
            return None
        return TapeTrade(
            self.instrument,
            member.venue,
            trade.price * member.price_factor,
            trade.size * member.size_factor,
            trade,
            trade.ts_event,
            trade.ts_recv,
        )


def build_markets(
    books: Iterable[L2Book], equivalence: QuoteEquivalence
) -> dict[str, ConsolidatedMarket]:
    """One market per canonical pair; on a venue with two instruments of one merged pair
    (BTC/USDT and BTC/USDC both mapped to BTC/USD) the first is kept."""
    grouped: dict[str, dict[str, L2Book]] = {}
    for book in books:
        pair = pair_of(book.instrument, equivalence)
        if pair is not None:
            grouped.setdefault(pair, {}).setdefault(book.instrument.venue, book)
    return {
        pair: ConsolidatedMarket(pair, list(by_venue.values()))
        for pair, by_venue in grouped.items()
    }
