"""The read model: what a process can tell a new subscriber and a REST caller.

One interface, two implementations:

- `LocalReadModel` (roles all, ingest, replay): the engine's instruments and books, the market
  state, plus what the bus consumers declared at the composition root add (their channels with
  the initial state of each, and the consolidated pseudo venue's instruments and books).
- `bus_redis.RelayReadModel` (role api): the instruments and channels the ingest process
  announced on Redis, and each topic's relayed snapshot and the deltas after it; it holds no
  books of its own, so REST book and trade routes answer 503 there.

`initial(topic)` is the one initial-state path of the stream: encoded messages and the stream
position (seq) they reach; published messages up to that seq are skipped for that client. A
local initial state also says its age (`age_ms`) and whether it is `stale` (older than its
venue's bound): a quiet venue's last book is never passed off as live.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from quantsaas import symbols
from quantsaas.book import L2Book
from quantsaas.bus import Bus, Topic
from quantsaas.market import InstrumentState, MarketState
from quantsaas.model import Instrument, Stamped, now_ns
from quantsaas.wire import encode, event_message

STALE_AFTER_S = 10.0
"""feeds.base.STALE_AFTER_S, the default data-age bound (an api process loads no feed code)."""

Key = tuple[str, str]
InitialState = Callable[[Instrument], Stamped | None]
"""What a new subscriber of a channel receives first (the book's snapshot, the open candle)."""


@dataclass(frozen=True, slots=True)
class Initial:
    """A topic's initial messages and the seq they reach.

    `pending`: there is no state yet but the topic's messages must wait for one (a relayed book
    before its first snapshot): the stream asks again with each message until there is.
    """

    seq: int
    messages: list[str] = field(default_factory=list)
    pending: bool = False


class ReadModel(Protocol):
    def instruments(self) -> Mapping[Key, Instrument]: ...

    def channels(self) -> Collection[str]: ...

    def initial(self, topic: Topic) -> Initial | None: ...

    def book(self, key: Key) -> L2Book | None: ...

    def state(self, key: Key) -> InstrumentState | None: ...


def resolve(
    instruments: Mapping[Key, Instrument], symbol: str, venue: str | None
) -> list[Instrument]:
    """Instruments a symbol names (any listed name: quantsaas.symbols), optionally on one venue."""
    return symbols.resolve(instruments.values(), symbol, venue)


class LocalReadModel:
    """The read model of a process that runs the engine (and its consumers)."""

    def __init__(
        self,
        bus: Bus,
        books: Mapping[Key, L2Book],
        market: MarketState | None = None,
        stale_after: Callable[[str], float] = lambda venue: STALE_AFTER_S,
    ) -> None:
        self._stale_after = stale_after
        """Venue -> seconds without data after which its state is stale."""
        self._bus = bus
        self._books: dict[Key, L2Book] = dict(books)
        self._instruments: dict[Key, Instrument] = {k: b.instrument for k, b in books.items()}
        self._market = market
        self._channels: dict[str, InitialState | None] = {}
        self._encoded: dict[Topic, tuple[int, Stamped, str]] = {}
        """Per topic, the last initial state sent and its encoding (without its age), reused
        while the state is equal (compared, not assumed: an open candle changes between the
        candle channel's messages) and the topic's seq has not moved."""

    # -- declared at the composition root -----------------------------------------------------

    def register_channel(self, name: str, initial: InitialState | None = None) -> None:
        """Make `name` subscribable on the stream, with what a new subscriber gets first."""
        self._channels[name] = initial

    def add_instrument(self, instrument: Instrument, book: L2Book | None = None) -> None:
        """An instrument a consumer serves (the consolidated pseudo venue)."""
        self._instruments.setdefault(instrument.key, instrument)
        if book is not None:
            self._books.setdefault(instrument.key, book)

    # -- ReadModel ---------------------------------------------------------------------------

    def instruments(self) -> Mapping[Key, Instrument]:
        return self._instruments

    def channels(self) -> Collection[str]:
        return self._channels.keys()

    def initial(self, topic: Topic) -> Initial | None:
        channel, venue, symbol = topic
        initial = self._channels.get(channel)
        instrument = self._instruments.get((venue, symbol))
        if initial is None or instrument is None:
            return None
        state = initial(instrument)
        if state is None:
            return None  # nothing yet: the first published message starts the stream
        seq = self._bus.last_seq(topic)
        cached = self._encoded.get(topic)
        if cached is not None and cached[0] == seq and cached[1] == state:
            body = cached[2]
        else:  # encoded once per state: a subscribe storm costs one encoding, not one each
            body = encode(event_message(channel, seq, state))
            self._encoded[topic] = (seq, state, body)
        # a state sent now may be old (a quiet venue's book): say how old, and if it is stale;
        # per client, spliced after the shared body (the same text `age_ms`/`stale` keys last)
        age_ns = max(0, now_ns() - state.ts_recv)
        stale = "true" if age_ns > self._stale_after(venue) * 1e9 else "false"
        return Initial(seq, [f'{body[:-1]},"age_ms":{age_ns // 1_000_000},"stale":{stale}}}'])

    def book(self, key: Key) -> L2Book | None:
        return self._books.get(key)

    def state(self, key: Key) -> InstrumentState | None:
        if self._market is None or key not in self._instruments:
            return None
        return self._market.register(self._instruments[key])
