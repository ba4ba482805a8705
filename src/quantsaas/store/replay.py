"""Replay recorded history through the live path: a Feed that feeds the same Engine and bus.

`StoredFeed` replays the normalised events of one venue (the simulator's): for each instrument
the book restarts from the last snapshot at or before `start`, then every recorded trade and
book message follows in recording order (checkpoint snapshots of our own books are skipped
after the first one). `RawFeed` replays the raw frames of a venue feed through that feed's own
parser (`handle_frame`), so a parser fix re-normalises a recorded day. Both pace by the
recorded receive times divided by `speed` (None: as fast as possible) and report progress.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quantsaas.errors import SequenceGap, quote
from quantsaas.feeds.base import EventSink, Feed, FeedState
from quantsaas.feeds.transport import Reconnect, WsFeed
from quantsaas.model import BookDelta, BookSnapshot, Instrument, MarketEvent
from quantsaas.store.history import HistoryStore, trade_from_row
from quantsaas.store.layout import ASK, BID, BOOK_CHECKPOINT, BOOK_DELTA, NS
from quantsaas.store.rawlog import raw_files, read_frames

Progress = Callable[[int, int], None]
"""Called with (done, total) now and then, and once at the end."""
YIELD_EVERY = 2000
WINDOW_NS = 600 * NS
"""Recorded time loaded at once by StoredFeed."""


@dataclass
class _Clock:
    """Maps recorded receive times onto the wall clock at `speed` x."""

    speed: float | None
    origin: int | None = None
    started: float = 0.0

    async def wait(self, ts_recv: int, index: int) -> None:
        if self.speed is None:
            if index % YIELD_EVERY == 0:
                await asyncio.sleep(0)
            return
        if self.origin is None:
            self.origin, self.started = ts_recv, time.monotonic()
        due = self.started + (ts_recv - self.origin) / NS / self.speed
        delay = due - time.monotonic()
        if delay > 0.001:
            await asyncio.sleep(delay)
        elif index % YIELD_EVERY == 0:
            await asyncio.sleep(0)


class _Replaying(Feed):
    venue: str

    def __init__(
        self, instruments: Sequence[Instrument], speed: float | None, progress: Progress | None
    ) -> None:
        super().__init__(instruments)
        self.clock = _Clock(speed)
        self.progress = progress
        self.finished = asyncio.Event()
        self.replayed = 0

    def request_resync(self, instrument: Instrument, reason: str) -> None:
        self.stats.record_error(f"book of {instrument.symbol} rejected in replay: {reason}")

    def _report(self, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(done, total)


class StoredFeed(_Replaying):
    """The normalised events of `instruments` (one venue) recorded in [start, end)."""

    def __init__(
        self,
        store: HistoryStore,
        instruments: Sequence[Instrument],
        start: int,
        end: int,
        speed: float | None = None,
        progress: Progress | None = None,
    ) -> None:
        super().__init__(instruments, speed, progress)
        self.venue = instruments[0].venue
        self.store, self.start, self.end = store, start, end

    def load(self, start: int, end: int, first: bool) -> list[MarketEvent]:
        """The events of one window, in recording order; the first window starts each book
        from its last snapshot at or before the replay's start."""
        events: list[tuple[int, MarketEvent]] = []
        for instrument in self.instruments:
            trades = self.store.trades_table(instrument, self.start if first else start, end)
            if trades.num_rows:
                events.extend(
                    (row["rec"], trade_from_row(instrument, row)) for row in trades.to_pylist()
                )
            rows = self.store.book_rows(instrument, self.start if first else start, end, first)
            events.extend(_book_events(instrument, rows.to_pylist()))
        events.sort(key=lambda item: item[0])
        return [event for _, event in events]

    async def run(self, sink: EventSink) -> None:
        """Replay window by window (WINDOW_NS of venue time), so memory holds one window only.
        Progress is in seconds of recorded time."""
        self.stats.state = FeedState.STARTING
        first, last = await asyncio.to_thread(
            self.store.extent, self.instruments, self.start, self.end
        )
        total = max(1, (last - first) // NS)
        self.stats.state = FeedState.LIVE
        index = 0
        for window in range(first, last + 1, WINDOW_NS):
            events = await asyncio.to_thread(
                self.load, window, min(window + WINDOW_NS, last + 1), window == first
            )
            for event in events:
                await self.clock.wait(event.ts_recv, index)
                sink(event)
                self.stats.record_message(1, event.ts_recv)
                index += 1
                if index % YIELD_EVERY == 0:
                    self._report((event.ts_event - first) // NS, total)
        self.replayed = index
        self._report(total, total)
        self.stats.state = FeedState.STOPPED
        self.finished.set()


def _book_events(
    instrument: Instrument, rows: list[dict[str, Any]]
) -> list[tuple[int, MarketEvent]]:
    out: list[tuple[int, MarketEvent]] = []
    index = 0
    while index < len(rows):
        first = rows[index]
        rec = first["rec"]
        bids, asks = [], []
        while index < len(rows) and rows[index]["rec"] == rec:
            row = rows[index]
            if row["side"] == BID:
                bids.append((row["price"], row["size"]))
            elif row["side"] == ASK:
                asks.append((row["price"], row["size"]))
            index += 1
        kind = first["kind"]
        if kind == BOOK_CHECKPOINT and out:
            continue  # the live book already had this state
        cls = BookDelta if kind == BOOK_DELTA else BookSnapshot
        event = cls(
            instrument, tuple(bids), tuple(asks), first["seq"], first["ts_event"], first["ts_recv"]
        )
        out.append((rec, event))
    return out


class RawFeed(_Replaying):
    """Recorded raw frames of a venue feed, parsed by that feed's own protocol code.

    The frames are the venue's whole connection, so every subscribed product is parsed as it
    was live (a checksum or a sequence spans them all); `only`, when given, names the
    instruments whose events go on to the sink (`replay --symbols`)."""

    def __init__(
        self,
        feed: WsFeed,
        root: Path,
        start: int,
        end: int,
        speed: float | None = None,
        progress: Progress | None = None,
        only: Sequence[Instrument] | None = None,
    ) -> None:
        super().__init__(feed.instruments if only is None else only, speed, progress)
        self.venue = feed.venue
        self.feed, self.root, self.start, self.end = feed, root, start, end
        self.only = None if only is None else frozenset(i.key for i in only)

    def load(self) -> list[tuple[int, str | bytes]]:
        return [
            (ts, frame)
            for path in raw_files(self.root, self.venue, self.start, self.end)
            for ts, frame in read_frames(path)
            if self.start <= ts < self.end
        ]

    def request_resync(self, instrument: Instrument, reason: str) -> None:
        """The engine rejected a book: the venue protocol hears it as it would live."""
        super().request_resync(instrument, reason)
        self.feed.request_resync(instrument, reason)

    async def run(self, sink: EventSink) -> None:
        frames = await asyncio.to_thread(self.load)
        feed = self.feed
        feed.sink = sink  # the protocol reports stale books to the engine, as live
        feed.on_connect()
        self.stats.state = FeedState.LIVE
        total = len(frames)
        for index, (ts_recv, frame) in enumerate(frames):
            await self.clock.wait(ts_recv, index)
            self.stats.record_message(len(frame), ts_recv)
            try:
                events = feed.handle_frame(frame, ts_recv)
            except (SequenceGap, Reconnect) as exc:
                self._reconnected(exc)
                continue
            except Exception as exc:  # a bad frame must not end the replay
                self.stats.malformed += 1
                self.stats.record_error(f"frame {index}: {type(exc).__name__}: {quote(exc)}")
                continue
            only = self.only
            for event in events:
                if only is None or event.instrument.key in only:
                    sink(event)
            if index % YIELD_EVERY == 0:
                self._report(index, total)
        self.replayed = total
        self._report(total, total)
        self.stats.state = FeedState.STOPPED
        self.finished.set()

    def _reconnected(self, exc: Exception) -> None:
        """Live, this frame would end the connection (a gap, a shutdown notice): every book goes
        stale and the protocol starts over; the recording goes on with the next connection's
        frames (its fresh snapshots)."""
        feed = self.feed
        if isinstance(exc, SequenceGap):
            feed.stats.gaps += 1
            feed.stats.resyncs += 1
        feed.stats.record_error(quote(exc))
        feed.books_stale(feed.instruments, f"{type(exc).__name__} in replay")
        feed.on_connect()


def stored_feeds(
    store: HistoryStore,
    start: int,
    end: int,
    venues: Sequence[str] = (),
    symbols: Sequence[str] = (),
    speed: float | None = None,
    progress: Progress | None = None,
) -> list[StoredFeed]:
    """One StoredFeed per recorded venue (filtered by `venues` and canonical `symbols`)."""
    by_venue: dict[str, list[Instrument]] = {}
    for instrument in store.instruments():
        if venues and instrument.venue not in venues:
            continue
        if symbols and instrument.symbol not in symbols:
            continue
        by_venue.setdefault(instrument.venue, []).append(instrument)
    return [
        StoredFeed(store, instruments, start, end, speed, progress)
        for _, instruments in sorted(by_venue.items())
    ]
