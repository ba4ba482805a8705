"""The Feed interface every market-data source implements, and its health counters.

A feed turns a source (the simulator, a venue WebSocket, a recorded file) into model events and
hands each one to a sink. The engine owns the books: when a book rejects an update it calls
`request_resync`, and the feed must answer with a fresh `BookSnapshot` for that instrument. A
feed that loses its connection or sequence tells the sink with a `BooksStale` item, so the last
books are not served as current until fresh snapshots arrive.

Two clocks are kept apart in FeedStats: frames (anything the venue sent, heartbeats and pongs
included: the connection is alive) and data (market events: the books are current). A book
whose last data is older than the venue's `stale_after_s` is stale, whatever the heartbeats say.
"""

from __future__ import annotations

import abc
import collections
import enum
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from quantsaas.errors import clip
from quantsaas.model import BookDelta, BookSnapshot, Instrument, MarketEvent, now_ns


@dataclass(frozen=True, slots=True)
class BooksStale:
    """These instruments' books went stale (connection lost, gap), and why."""

    instruments: tuple[Instrument, ...]
    reason: str


EventSink = Callable[[MarketEvent | BooksStale], None]
InstrumentsHook = Callable[["Feed", Sequence[Instrument]], None]
"""Told of instruments a feed learnt after it was built (a chain fetched in its run loop)."""

RATE_WINDOW_NS = 10_000_000_000
STALE_AFTER_S = 10.0
"""A feed with no market data for this long is not live (what /health, /readyz and the
stream's `status` messages count), unless its venue's bound (`FeedStats.stale_after_s`) says
otherwise."""
DEFAULT_STALE_S = STALE_AFTER_S


class FeedState(enum.Enum):
    STARTING = "starting"
    LIVE = "live"
    RESYNCING = "resyncing"
    DISCONNECTED = "disconnected"
    STOPPED = "stopped"


@dataclass
class FeedStats:
    """Counters shown in /health; updated by the feed, read by the API."""

    state: FeedState = FeedState.STARTING
    messages: int = 0
    bytes: int = 0
    gaps: int = 0
    resyncs: int = 0
    reconnects: int = 0
    malformed: int = 0
    """Frames that could not be parsed (counted and logged, the feed went on)."""
    checksums_verified: int = 0
    """Book checksums the venue sent that matched our book (Kraken)."""
    checksum_failures: int = 0
    """Book checksums that did not match: that book was dropped and resynced."""
    replies: collections.Counter[str] = field(default_factory=collections.Counter)
    """Venue replies to our requests, by kind (`RpcResult`, `RpcError`, ...)."""
    ignored: int = 0
    """Well-formed frames of a type or channel the feed does not consume (counted, dropped)."""
    last_message_ns: int | None = None
    """Receive time of the last frame of any kind (heartbeats too): liveness."""
    last_data_ns: int | None = None
    """Receive time of the last market data (never a heartbeat): what /health calls live."""
    stale_after_s: float = DEFAULT_STALE_S
    """The venue's bound: a book without data for longer is stale."""
    book_data_ns: dict[str, int] = field(default_factory=dict)
    """Instrument symbol -> receive time of its last book event."""
    last_error: str | None = None
    """Why the feed last disconnected, resynced or rejected a frame (shown in /health)."""
    last_error_ns: int | None = None
    endpoint: str | None = None
    _recent: collections.deque[int] = field(default_factory=collections.deque, repr=False)

    def record_message(self, size: int, ts_recv: int | None = None) -> None:
        """A message that is market data (a simulator event, a replayed record)."""
        self.record_frame(size, ts_recv)
        self.last_data_ns = self.last_message_ns

    def record_data(self, events: Iterable[MarketEvent], ts_recv: int) -> None:
        """Market events were delivered from a frame received at `ts_recv`."""
        self.last_data_ns = ts_recv
        books = self.book_data_ns
        for event in events:
            if type(event) is BookDelta or type(event) is BookSnapshot:
                books[event.instrument.symbol] = ts_recv

    def record_frame(self, size: int, ts_recv: int | None = None) -> None:
        """Any frame from the venue, data or not (heartbeats, pongs, acks): it is alive."""
        stamp = now_ns() if ts_recv is None else ts_recv
        self.messages += 1
        self.bytes += size
        self.last_message_ns = stamp
        recent = self._recent
        recent.append(stamp)
        horizon = stamp - RATE_WINDOW_NS
        while recent[0] < horizon:
            recent.popleft()

    def record_error(self, text: str) -> None:
        self.last_error = clip(text)
        self.last_error_ns = now_ns()

    def messages_per_second(self, at_ns: int | None = None) -> float:
        stamp = now_ns() if at_ns is None else at_ns
        horizon = stamp - RATE_WINDOW_NS
        recent = self._recent
        while recent and recent[0] < horizon:
            recent.popleft()
        return len(recent) / (RATE_WINDOW_NS / 1e9)

    def is_live(self, at_ns: int | None = None) -> bool:
        """State LIVE and market data (never a heartbeat) within the venue's bound."""
        age = self.last_data_age_s(at_ns)
        return self.state is FeedState.LIVE and age is not None and age < self.stale_after_s

    def last_message_age_s(self, at_ns: int | None = None) -> float | None:
        return _age_s(self.last_message_ns, at_ns)

    def last_data_age_s(self, at_ns: int | None = None) -> float | None:
        return _age_s(self.last_data_ns, at_ns)

    def book_age_s(self, symbol: str, at_ns: int | None = None) -> float | None:
        return _age_s(self.book_data_ns.get(symbol), at_ns)

    def stale_books(self, at_ns: int | None = None) -> list[str]:
        """Symbols whose book had data, but none within `stale_after_s`."""
        stamp = now_ns() if at_ns is None else at_ns
        horizon = stamp - int(self.stale_after_s * 1e9)
        return sorted(symbol for symbol, ts in self.book_data_ns.items() if ts < horizon)


def _age_s(ts: int | None, at_ns: int | None) -> float | None:
    if ts is None:
        return None
    stamp = now_ns() if at_ns is None else at_ns
    return max(0.0, (stamp - ts) / 1e9)


class Feed(abc.ABC):
    """A source of market events for a fixed set of instruments on one venue."""

    venue: str

    def __init__(self, instruments: Sequence[Instrument]) -> None:
        self.instruments = tuple(instruments)
        self.stats = FeedStats()
        self.sink: EventSink | None = None
        """Where `run` sends events (set by `run`), so protocol code can report stale books."""

        self.on_instruments: InstrumentsHook | None = None
        """Set by the owner of the books (the engine): told of instruments added later."""

    def add_instruments(self, instruments: Sequence[Instrument]) -> None:
        """Serve these instruments too (called before any event of theirs is produced)."""
        known = set(self.instruments)
        new = tuple(inst for inst in instruments if inst not in known)
        self.instruments = (*self.instruments, *new)
        if new and self.on_instruments is not None:
            self.on_instruments(self, new)

    def books_stale(self, instruments: Sequence[Instrument], reason: str) -> None:
        if self.sink is not None:
            self.sink(BooksStale(tuple(instruments), reason))

    @abc.abstractmethod
    async def run(self, sink: EventSink) -> None:
        """Produce events into `sink` until cancelled. Must start each book with a snapshot."""

    @abc.abstractmethod
    def request_resync(self, instrument: Instrument, reason: str) -> None:
        """The engine distrusts this instrument's book: send a fresh snapshot soon."""
