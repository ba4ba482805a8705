"""What the client knows of each server stream, and the consumers (watchers) it feeds.

A stream is the server's (channel, venue, symbol) with its per-stream `seq`. Every data message
is checked against the last `seq` of its stream:

* `seq == last + 1`: in order; a book delta is applied to the stream's local book.
* `seq > last + 1`: messages were lost. A `Gap` goes to the watchers; a book stream forgets its
  book and asks for a resubscription (the server then sends a fresh snapshot); other streams go
  on from the new `seq` (nothing could refill them; history can).
* `seq <= last`: a late duplicate (from before a resubscription): dropped.

A server `gap` message (the server dropped messages for this client) is reported the same way;
the server follows it with a fresh book snapshot by itself. After a reconnect the first message
of each stream is compared with the last one before it: the same stream position means nothing
was lost, anything else is a `Gap` with reason "reconnect" (`missed` None when the server
restarted and its `seq` began again). A book stream always restarts from a snapshot.

Watchers are the iterators' ends: `QueueWatcher` keeps every item (bounded; overflow drops and
reports a `Gap` with reason "client-queue"), `BookWatcher` conflates: it wakes its iterator,
which yields the stream's current book, so a slow reader gets the latest book, never a stale
backlog. No I/O here: the connection sends what `on_data` and `on_gap` ask for.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from quantsaas.client.book import BookOutOfSync, LocalBook
from quantsaas.client.decode import JSON, MALFORMED, Decoder, stream_key
from quantsaas.client.errors import ClientError
from quantsaas.client.events import Gap
from quantsaas.errors import quote
from quantsaas.model import BookDelta, BookSnapshot, now_ns

log = logging.getLogger("quantsaas.client")

Key = tuple[str, str, str]
"""(channel, venue, symbol) as the server names a stream."""
BOOK = "book"


@dataclass
class StreamStats:
    """Counters for the whole connection (read them as `client.stats`)."""

    messages: int = 0
    gaps: int = 0
    malformed: int = 0
    duplicates: int = 0
    resyncs: int = 0
    reconnects: int = 0


class Watcher:
    """One iterator's end of one or more streams."""

    def __init__(self) -> None:
        self.wake = asyncio.Event()
        self.error: BaseException | None = None

    def push(self, item: Any, stream: Stream) -> None:
        raise NotImplementedError

    def fail(self, error: BaseException) -> None:
        if self.error is None:
            self.error = error
        self.wake.set()


class QueueWatcher(Watcher):
    """Every item in order, at most `limit` waiting; `keep` filters data (never gaps)."""

    def __init__(self, limit: int, keep: Callable[[Any], bool] | None = None) -> None:
        super().__init__()
        self.items: collections.deque[Any] = collections.deque()
        self.limit = limit
        self.keep = keep
        self.dropped: dict[Key, int] = {}

    def push(self, item: Any, stream: Stream) -> None:
        if not isinstance(item, Gap) and self.keep is not None and not self.keep(item):
            return
        key = stream.key
        if len(self.items) >= self.limit:
            self.dropped[key] = self.dropped.get(key, 0) + 1
            return
        if self.dropped:
            missed = self.dropped.pop(key, 0)
            if missed:  # the hole goes exactly where the dropped items were
                self.items.append(Gap(*key, missed, "client-queue", now_ns()))
        self.items.append(item)
        self.wake.set()

    def take(self) -> Any | None:
        """The next item, or None when there is none."""
        if self.items:
            return self.items.popleft()
        self.wake.clear()
        return None


class BookWatcher(Watcher):
    """Conflating: remembers gaps and which books changed; the iterator reads the books."""

    def __init__(self) -> None:
        super().__init__()
        self.gaps: collections.deque[Gap] = collections.deque()
        self.changed: dict[Key, Stream] = {}

    def push(self, item: Any, stream: Stream) -> None:
        if isinstance(item, Gap):
            self.gaps.append(item)
        elif stream.book is not None:
            self.changed[stream.key] = stream
        self.wake.set()

    def take(self, depth: int | None) -> Any | None:
        if self.gaps:
            return self.gaps.popleft()
        while self.changed:
            key = next(iter(self.changed))
            stream = self.changed.pop(key)
            if stream.book is not None:
                return stream.book.to_snapshot(depth)
        self.wake.clear()
        return None


class Stream:
    """One server stream as followed by this client."""

    def __init__(self, key: Key, stats: StreamStats) -> None:
        self.key = key
        self.stats = stats
        self.watchers: list[Watcher] = []
        self.last_seq: int | None = None
        self.resume_from: int | None = None
        """Last `seq` before a reconnect, until the first message after it."""
        self.book: LocalBook | None = None
        self.awaiting_snapshot = key[0] == BOOK

    def emit(self, item: Any) -> None:
        for watcher in self.watchers:
            watcher.push(item, self)

    def gap(self, missed: int | None, reason: str) -> None:
        self.stats.gaps += 1
        channel, venue, symbol = self.key
        log.info("gap on %s %s %s: %s (missed %s)", channel, venue, symbol, reason, missed)
        self.emit(Gap(channel, venue, symbol, missed, reason, now_ns()))

    def lost(self, reason: str, snapshot: bool = False) -> bool:
        """A message of this stream is unusable; True when a resubscription must follow.
        While a book awaits its snapshot only a bad snapshot asks again."""
        if self.awaiting_snapshot and not snapshot:
            return False
        self.gap(None, reason)
        if self.key[0] == BOOK:
            self.book, self.awaiting_snapshot = None, True
            return True
        self.last_seq = None
        return False

    def reconnecting(self) -> None:
        if self.last_seq is not None:
            self.resume_from = self.last_seq
        self.last_seq = None
        if self.key[0] == BOOK:
            self.awaiting_snapshot = True

    def on_event(self, event: Any, seq: int) -> bool:
        """Apply one decoded event at `seq`; True when the stream must be resubscribed."""
        if type(event) is BookSnapshot:
            return self._on_snapshot(event, seq)
        if self.awaiting_snapshot:
            return False
        last, resume = self.last_seq, self.resume_from
        if resume is not None:
            self.resume_from = None
            if seq != resume + 1:
                self.gap(seq - resume - 1 if seq > resume else None, "reconnect")
        elif last is not None and seq != last + 1:
            if seq <= last:
                self.stats.duplicates += 1
                return False
            self.gap(seq - last - 1, "sequence")
            if self.key[0] == BOOK:
                self.book, self.awaiting_snapshot = None, True
                return True
        self.last_seq = seq
        if type(event) is BookDelta:
            book = self.book
            if book is None:
                return False
            try:
                book.apply_delta(event)
            except BookOutOfSync as exc:
                log.warning("%s: %s", self.key, exc)
                return self.lost("crossed")
        self.emit(event)
        return False

    def _on_snapshot(self, snapshot: BookSnapshot, seq: int) -> bool:
        resume, self.resume_from = self.resume_from, None
        if resume is not None and seq != resume:
            self.gap(seq - resume if seq > resume else None, "reconnect")
        try:
            if self.book is None:
                self.book = LocalBook(snapshot)
            else:
                self.book.apply_snapshot(snapshot)
        except BookOutOfSync as exc:
            log.warning("%s: crossed snapshot: %s", self.key, exc)
            return self.lost("crossed", snapshot=True)
        self.last_seq, self.awaiting_snapshot = seq, False
        self.emit(snapshot)
        return False


class Streams:
    """Every stream of one connection, fed with the server's messages."""

    def __init__(self, decoder: Decoder) -> None:
        self.decoder = decoder
        self.stats = StreamStats()
        self.by_key: dict[Key, Stream] = {}

    def stream(self, key: Key) -> Stream:
        found = self.by_key.get(key)
        if found is None:
            found = self.by_key[key] = Stream(key, self.stats)
        return found

    def on_data(self, message: JSON) -> Key | None:
        """One data message; returns a stream key to resubscribe, if one must be."""
        try:
            key = stream_key(message)
            stream = self.by_key.get(key)
        except MALFORMED:
            self.stats.malformed += 1
            log.warning("malformed message: %s", quote(message))
            return None
        if stream is None:
            return None
        self.stats.messages += 1
        seq = message.get("seq")
        try:
            if type(seq) is not int:
                raise TypeError("seq must be an integer")
            event = self.decoder.decode(message)
        except MALFORMED as exc:
            self.stats.malformed += 1
            log.warning("malformed %s message (%s): %s", key[0], quote(exc), quote(message))
            snapshot = message.get("type") == "snapshot"
            return key if stream.lost("malformed", snapshot) else None
        if event is None:
            return None
        return key if stream.on_event(event, seq) else None

    def on_gap(self, message: JSON) -> None:
        """The server's `gap`: it dropped messages; a book snapshot follows from the server."""
        try:
            key = (message["channel"], message["venue"], message["symbol"])
            stream = self.by_key.get(key)
        except (KeyError, TypeError):
            self.stats.malformed += 1
            return
        if stream is None:
            return
        missed = message.get("missed")
        stream.gap(missed if type(missed) is int else None, "server")
        if key[0] == BOOK:
            stream.book, stream.awaiting_snapshot = None, True
        else:
            stream.last_seq = None

    def reconnecting(self) -> None:
        for stream in self.by_key.values():
            stream.reconnecting()

    def fail(self, error: ClientError) -> None:
        for stream in self.by_key.values():
            for watcher in stream.watchers:
                watcher.fail(error)
