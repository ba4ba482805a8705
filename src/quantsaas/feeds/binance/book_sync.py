"""Binance's official local-order-book algorithm for one symbol, as a pure state machine.

1. Buffer diffs; the feed fetches a REST snapshot once the first diff is buffered.
2. A snapshot whose `lastUpdateId` is below the first buffered `U` is too old: fetch again.
3. Drop buffered diffs with `u <= lastUpdateId`; the first one left must satisfy
   `U <= lastUpdateId + 1` (else updates are missing: start over).
4. Publish the snapshot, then the buffered diffs, then live diffs: `u` <= local id is stale and
   ignored; `U > local id + 1` is a gap, so the book is dropped and the algorithm restarts.
Every restart publishes a fresh snapshot; nothing is ever spliced onto an old book.
"""

from __future__ import annotations

import enum

from quantsaas.errors import SequenceGap
from quantsaas.feeds.binance.parse import DepthDiff, DepthSnapshot
from quantsaas.model import BookDelta, BookSnapshot, Instrument

MAX_BUFFER = 10_000
"""Diffs kept while waiting for a snapshot; beyond that the oldest are dropped (and the
snapshot that arrives is then judged against the oldest kept)."""


class StaleSnapshot(SequenceGap):
    """The REST snapshot is older than the first buffered diff."""


class SyncState(enum.Enum):
    BUFFERING = "buffering"
    SYNCED = "synced"


class DepthSync:
    """Snapshot + diff bridging for one instrument; emits BookSnapshot/BookDelta to publish."""

    __slots__ = ("instrument", "state", "buffer", "last_id", "gaps", "stale_snapshots")

    def __init__(self, instrument: Instrument) -> None:
        self.instrument = instrument
        self.state = SyncState.BUFFERING
        self.buffer: list[DepthDiff] = []
        self.last_id: int | None = None
        self.gaps = 0
        self.stale_snapshots = 0

    @property
    def wants_snapshot(self) -> bool:
        """True when a diff is buffered and no book is synced: time to fetch a snapshot."""
        return self.state is SyncState.BUFFERING and bool(self.buffer)

    def reset(self) -> None:
        """Forget the book (reconnect or resync): buffer again and wait for a new snapshot."""
        self.state = SyncState.BUFFERING
        self.buffer.clear()
        self.last_id = None

    def on_diff(self, diff: DepthDiff) -> BookDelta | None:
        """A live diff: buffered, ignored as stale, or returned to publish.

        Raises SequenceGap (after resetting) when updates are missing.
        """
        if self.state is SyncState.BUFFERING:
            if len(self.buffer) >= MAX_BUFFER:
                del self.buffer[0]
            self.buffer.append(diff)
            return None
        assert self.last_id is not None
        if diff.last_id <= self.last_id:
            return None
        if diff.first_id > self.last_id + 1:
            expected = self.last_id + 1
            self.gaps += 1
            self.reset()
            self.buffer.append(diff)
            raise SequenceGap(
                f"binance {self.instrument.native_symbol}: update ids jump from {expected} "
                f"to {diff.first_id}"
            )
        self.last_id = diff.last_id
        return diff.delta

    def on_snapshot(self, depth: DepthSnapshot) -> list[BookSnapshot | BookDelta]:
        """Bridge a REST snapshot with the buffer; returns the snapshot and the deltas after it.

        Raises StaleSnapshot (keep buffering, fetch again) or SequenceGap (buffer cannot be
        bridged; it is cleared and the next diff triggers a new fetch).
        """
        if self.state is SyncState.SYNCED:
            self.reset()
        lid = depth.last_update_id
        if self.buffer and lid < self.buffer[0].first_id:
            self.stale_snapshots += 1
            raise StaleSnapshot(
                f"binance {self.instrument.native_symbol}: snapshot lastUpdateId {lid} is older "
                f"than the first buffered update {self.buffer[0].first_id}"
            )
        pending = [diff for diff in self.buffer if diff.last_id > lid]
        if pending and pending[0].first_id > lid + 1:
            self.gaps += 1
            self.reset()
            raise SequenceGap(
                f"binance {self.instrument.native_symbol}: buffered updates start at "
                f"{pending[0].first_id}, after snapshot {lid} + 1"
            )
        self.buffer.clear()
        self.state = SyncState.SYNCED
        self.last_id = lid
        out: list[BookSnapshot | BookDelta] = [depth.snapshot]
        for diff in pending:
            delta = self.on_diff(diff)
            if delta is not None:
                out.append(delta)
        return out
