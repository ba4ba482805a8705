"""The recorder: every accepted event and every raw venue frame, to disk, off the event loop.

On the event loop the recorder only appends the event object to a deque (`on_envelope`, a bus
consumer of the engine's trades and books, declared at the composition root: lossless, as every
bus consumer is; `on_raw`, a WsFeed raw-frame tap) and, when a book is due for one, a checkpoint
snapshot of the engine's book. The deques are bounded (`max_pending`): past it, events are counted
as dropped in /health and /metrics, never silently. A writer thread wakes every `flush_s`,
drains the deques, converts them to NumPy columns (raw int64 prices and sizes, columns.py) and
writes one new Parquet file per (kind, venue, symbol, date) and flush (layout.py; written by
parquet_write.py, without PyArrow), plus one appended zstd frame per venue and hour of raw
frames (rawlog.py). A SIGKILL therefore loses at most what arrived since the last flush.

A failed write (disk full, permissions) is logged, counted in `RecorderStatus` (shown in
/health) and its events dropped; the live service is never affected. `RecorderStatus.ok` (and
/readyz) follows the current state: it is whether the last flush that had something to write
wrote all of it, so readiness comes back with the first good flush after space does; the last
error stays visible with its age. Retention runs in the same thread, compaction of finished
slots in a child process it starts (maintenance.py), so the serving process never loads
PyArrow or DuckDB.

The recorder stops writing before the disk is full: while the data directory's filesystem has
less than `min_free_bytes` free, a flush drops what it drained (counted) instead of writing, so
the rest of the machine (the accounts database, logs) keeps room. Below the floor it applies
the retention at once, and with `free_space_retention` also deletes the oldest recorded days
(never today) until the floor is met again; writing resumes by itself.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import shutil
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quantsaas.book import L2Book
from quantsaas.bus import Envelope
from quantsaas.channels import BOOK, TRADES
from quantsaas.errors import BookNotReady, StorageError, clip, describe
from quantsaas.model import BookDelta, BookSnapshot, MarketEvent, Trade, now_ns
from quantsaas.store import maintenance
from quantsaas.store.columns import Queued, Rows, to_rows, write_rows
from quantsaas.store.layout import (
    BOOK_CHECKPOINT,
    DAY_NS,
    NS,
    SLOT_NS,
    date_of,
    partition_dir,
)
from quantsaas.store.rawlog import RawFrame, append_frames, raw_path

log = logging.getLogger(__name__)

INPUTS = (TRADES, BOOK)
"""The channels the recorder consumes."""
MAINTENANCE_S = 60.0
ERROR_LOG_S = 30.0
ROOM_EVERY_S = 5.0
"""How often, at most, retention runs to make room while free space is below the floor."""
MB = 1 << 20


def disk_free(path: Path) -> int:
    """Free bytes on the filesystem holding `path` (or its nearest existing parent)."""
    while not path.exists() and path.parent != path:
        path = path.parent
    return shutil.disk_usage(path).free


@dataclass(frozen=True)
class RecorderConfig:
    root: Path
    flush_s: float = 1.0
    """Loss bound on a crash; each flush writes new files."""
    snapshot_s: float = 60.0
    """A checkpoint snapshot of each book at least this often (while it changes)."""
    retention_days: int = 0
    """Delete date partitions older than this many days; 0 keeps everything."""
    raw: bool = True
    """Record the raw frames of venue feeds too."""
    max_pending: int = 5_000_000
    """Events buffered before new ones are dropped (the disk cannot keep up)."""
    min_free_bytes: int = 0
    """Stop writing while the data filesystem has less free space than this (0: never)."""
    free_space_retention: bool = False
    """Below the floor, also delete the oldest recorded days (never today) to make room."""


@dataclass
class RecorderStatus:
    events: int = 0
    """Events written to Parquet."""
    raw_frames: int = 0
    files: int = 0
    dropped: int = 0
    """Events or frames lost to write errors or a full buffer."""
    last_error: str | None = None
    last_error_ns: int | None = None
    last_flush_ns: int | None = None
    errors: int = 0
    free_bytes: int | None = None
    """Free space of the data filesystem at the last flush (None: no floor configured)."""
    paused: bool = False
    """Writing is paused: free space is below the floor."""
    days_freed: int = 0
    """Recorded days deleted to make room."""
    quarantined: int = 0
    """Events that could not be stored, kept aside in `quarantine/` (the rest was written)."""
    ok: bool = True
    """The last flush that had something to write wrote all of it (readiness)."""

    def json(self, pending: int) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "events": self.events,
            "raw_frames": self.raw_frames,
            "files": self.files,
            "pending": pending,
            "dropped": self.dropped,
            "errors": self.errors,
            "last_error": self.last_error,
            "last_flush_ns": self.last_flush_ns,
            "paused": self.paused,
            "free_bytes": self.free_bytes,
            "days_freed": self.days_freed,
            "quarantined": self.quarantined,
        }


Pending = Queued


class Recorder:
    def __init__(
        self,
        config: RecorderConfig,
        books: Mapping[tuple[str, str], L2Book] | None = None,
        free_space: Callable[[Path], int] = disk_free,
    ):
        self.config = config
        self._free_space = free_space
        self._room_at = float("-inf")
        self.status = RecorderStatus()
        self._books = books
        self._events: collections.deque[Pending] = collections.deque()
        self._raw: collections.deque[RawFrame] = collections.deque()
        self._checkpoint_ns: dict[tuple[str, str], int] = {}
        self._snapshot_ns = round(config.snapshot_s * NS)
        self._max_pending = config.max_pending
        self._rec = time.time_ns()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._write_lock = threading.Lock()
        self._last_error_log = 0.0
        self._last_maintenance = 0.0

    # -- hot path (event loop) ---------------------------------------------------------------

    def on_envelope(self, envelope: Envelope) -> None:
        """Bus consumer: the engine's own instruments only (not the consolidated pseudo venue)."""
        books = self._books
        if books is None or envelope.topic[1:] in books:
            self.on_event(envelope.event)  # type: ignore[arg-type]

    def on_event(self, event: MarketEvent) -> None:
        kind = type(event)
        if kind is not Trade and kind is not BookDelta and kind is not BookSnapshot:
            return
        events = self._events
        if len(events) >= self._max_pending:
            self.status.dropped += 1
            return
        events.append(event)  # type: ignore[arg-type]
        if kind is BookDelta:
            key = event.instrument.key
            if event.ts_recv - self._checkpoint_ns.get(key, 0) >= self._snapshot_ns:
                self._checkpoint(key, event.ts_recv)
        elif kind is BookSnapshot:
            self._checkpoint_ns[event.instrument.key] = event.ts_recv

    def _checkpoint(self, key: tuple[str, str], ts_recv: int) -> None:
        self._checkpoint_ns[key] = ts_recv
        book = None if self._books is None else self._books.get(key)
        if book is None:
            return
        try:
            self._events.append((BOOK_CHECKPOINT, book.to_snapshot()))
        except BookNotReady:
            pass

    def on_raw(self, venue: str, frame: str | bytes, ts_recv: int) -> None:
        if len(self._raw) >= self.config.max_pending:
            self.status.dropped += 1
            return
        self._raw.append((venue, frame, ts_recv))

    @property
    def pending(self) -> int:
        return len(self._events) + len(self._raw)

    # -- lifecycle ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Background job: the writer thread lives as long as this coroutine."""
        self.start()
        try:
            await asyncio.Event().wait()
        finally:
            self.stop()

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="recorder", daemon=True)
        self._thread.start()
        log.info("recording into %s (flush every %.2fs)", self.config.root, self.config.flush_s)

    def stop(self) -> None:
        """Stop the writer thread after a final flush."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            thread.join()
        self.flush()

    def _loop(self) -> None:
        while not self._stop.wait(self.config.flush_s):
            try:
                self.flush()
                if time.monotonic() - self._last_maintenance >= MAINTENANCE_S:
                    self.maintain()
            except Exception as exc:  # the writer must outlive any bug: shown, then go on
                log.exception("recorder: writer failed; it goes on with the next flush")
                self._failed(f"writer failed: {describe(exc)}", 0)

    # -- writer thread -----------------------------------------------------------------------

    def flush(self) -> int:
        """Write everything queued so far; returns the number of events and frames written."""
        with self._write_lock:
            events = _drain(self._events)
            frames = _drain(self._raw)
            errors = self.status.errors
            written = 0
            if (events or frames) and self._below_floor():
                floor = self.config.min_free_bytes // MB
                self._failed(f"less than {floor} MB free: recording paused", len(events))
                self.status.dropped += len(frames)
                events, frames = [], []
            if events:
                written += self._write_events(events)
            if frames:
                written += self._write_raw(frames)
            self.status.last_flush_ns = now_ns()
            if self.status.errors != errors or written:
                self.status.ok = self.status.errors == errors
            return written

    def _below_floor(self) -> bool:
        """Is free space below the floor (after trying to make room)?"""
        floor = self.config.min_free_bytes
        if floor <= 0:
            return False
        status = self.status
        status.free_bytes = self._free_space(self.config.root)
        if status.free_bytes < floor and time.monotonic() - self._room_at >= ROOM_EVERY_S:
            self._room_at = time.monotonic()
            self._make_room()
            status.free_bytes = self._free_space(self.config.root)
        if status.paused != (status.free_bytes < floor):
            status.paused = not status.paused
            level = logging.ERROR if status.paused else logging.WARNING
            log.log(
                level,
                "recorder: %s MB free, floor %s MB: %s",
                status.free_bytes // MB,
                floor // MB,
                "recording paused" if status.paused else "recording again",
            )
        return status.paused

    def _make_room(self) -> None:
        """Retention now, then (with free_space_retention) the oldest days until the floor."""
        root, config = self.config.root, self.config
        try:
            if config.retention_days > 0:
                maintenance.apply_retention(root, config.retention_days, now_ns())
            if not config.free_space_retention:
                return
            today = date_of(now_ns())
            for day in maintenance.recorded_dates(root):
                if day >= today or self._free_space(root) >= config.min_free_bytes:
                    break
                maintenance.drop_day(root, day)
                self.status.days_freed += 1
                log.warning("recorder: deleted the recorded day %s to make room", day)
        except OSError as exc:
            self._failed(f"retention failed: {self._reason(exc)}", 0)

    def maintain(self) -> None:
        self._last_maintenance = time.monotonic()
        root, slot = self.config.root, now_ns() // SLOT_NS
        try:
            if maintenance.has_work(root, slot):  # in a child: no PyArrow or DuckDB here
                try:
                    maintenance.compact_in_child(root, slot)
                except StorageError as exc:
                    self._failed(f"maintenance failed: {exc}", 0)
            if self.config.retention_days > 0:
                maintenance.apply_retention(self.config.root, self.config.retention_days, now_ns())
        except OSError as exc:
            self._failed(f"maintenance failed: {self._reason(exc)}", 0)

    def _rows(self, events: list[Pending], rec: int) -> list[tuple[str, Any, int, Rows]]:
        """The batch's rows; a batch that cannot be converted is split, and what cannot be
        converted alone is quarantined (`quarantine/*.txt` under the data dir), the rest kept."""
        try:
            return list(to_rows(events, rec))
        except Exception as exc:
            log.error(
                "recorder: a batch cannot be stored (%s); isolating the bad events", describe(exc)
            )
        good: list[Pending] = []
        bad: list[Pending] = []
        for event in events:
            try:
                list(to_rows([event], rec))
            except Exception:
                bad.append(event)
            else:
                good.append(event)
        self._quarantine(bad)
        return list(to_rows(good, rec)) if good else []

    def _quarantine(self, bad: list[Pending]) -> None:
        self.status.quarantined += len(bad)
        path = self.config.root / "quarantine" / f"{now_ns()}.txt"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("".join(f"{clip(repr(event), 2000)}\n" for event in bad))
        except OSError as exc:
            self._failed(f"cannot quarantine: {self._reason(exc)}", len(bad))
            return
        self._failed(f"{len(bad)} event(s) cannot be stored: kept in {self._where(path)}", 0)

    def _write_events(self, events: list[Pending]) -> int:
        rec = self._rec
        self._rec += len(events)
        slot = now_ns() // SLOT_NS
        written = 0
        for kind, instrument, day, rows in self._rows(events, rec):
            directory = partition_dir(
                self.config.root, kind, instrument.venue, instrument.symbol, date_of(day * DAY_NS)
            )
            first = int(rows.column("rec")[0])
            path = directory / f"{slot}-{first}.part.parquet"
            try:
                write_rows(rows, instrument, path)
            except OSError as exc:
                self._failed(
                    f"cannot write {self._where(path)}: {self._reason(exc)}", rows.num_rows
                )
                continue
            written += rows.num_rows
            self.status.files += 1
        self.status.events += len(events)
        return written

    def _write_raw(self, frames: list[RawFrame]) -> int:
        by_file: dict[Path, list[RawFrame]] = {}
        for frame in frames:
            by_file.setdefault(raw_path(self.config.root, frame[0], frame[2]), []).append(frame)
        written = 0
        for path, batch in by_file.items():
            try:
                append_frames(path, batch)
            except OSError as exc:
                self._failed(f"cannot write {self._where(path)}: {self._reason(exc)}", len(batch))
                continue
            written += len(batch)
        self.status.raw_frames += written
        return written

    def _where(self, path: Path) -> str:
        """`path` inside the data directory, without the directory itself: /health is public,
        and the absolute path of the data directory is for administrators only."""
        try:
            return str(path.relative_to(self.config.root))
        except ValueError:
            return path.name

    def _reason(self, exc: OSError) -> str:
        """What went wrong, without the absolute path an OSError carries."""
        if exc.strerror:
            return f"[Errno {exc.errno}] {exc.strerror}"
        return type(exc).__name__

    def _failed(self, text: str, lost: int) -> None:
        status = self.status
        status.dropped += lost
        status.errors += 1
        status.last_error, status.last_error_ns = text, now_ns()
        if time.monotonic() - self._last_error_log >= ERROR_LOG_S:
            self._last_error_log = time.monotonic()
            log.error("recorder: %s (%d events dropped so far)", text, status.dropped)

    def health(self) -> dict[str, Any]:
        body = self.status.json(self.pending)
        body["min_free_bytes"] = self.config.min_free_bytes
        if self.status.last_error_ns is not None:
            body["last_error_age_s"] = round((now_ns() - self.status.last_error_ns) / 1e9, 3)
        return body


def _drain(queue: collections.deque[Any]) -> list[Any]:
    popleft = queue.popleft
    return [popleft() for _ in range(len(queue))]
