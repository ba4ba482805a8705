"""Scale-out on Redis: ingest processes publish the bus, API processes relay it to clients.

Why Redis Streams, not Pub/Sub: Pub/Sub is at-most-once with no history, so an API process that
loses its connection for a moment silently loses messages. A stream (`XADD ... MAXLEN ~`) keeps
the recent past: a subscriber remembers the last entry id it read and, after a reconnect,
`XREAD`s from there, so a dropped connection costs nothing (a Redis server that restarts
empty loses what it held, and clients see a gap and a fresh snapshot). One stream holds
every topic, so all API processes see one global order.

Entries: `k` kind (`m` a bus message, `s` a book snapshot), `c`/`v`/`s` the topic, `q` the
ingest process's per-topic seq, `w` the encoded wire JSON (`encode_envelope`), byte-identical
for every client of every API process.

- `RedisPublisher` (ingest/all roles) queues every published message (bounded; while Redis is
  down the queue holds up to `MAX_PENDING` messages, later ones are dropped and become gaps),
  writes them in pipelined batches, adds a snapshot of every valid book every `snapshot_s` and
  after each (re)connect, and reconnects with exponential backoff.
- `RedisSubscriber` (api role) reads from the newest entry on, re-publishes each message on its
  local `RelayBus` with the ingest's seq (`Bus.relay`), and keeps the latest book snapshot plus the
  deltas after it, so a new book subscriber gets snapshot + deltas up to the current seq. A seq
  jump (messages lost) is a `gap` for clients and a book stream is re-snapshotted.

Both keep plain counters for /metrics (api/metrics.py reads them at scrape time): `connected`,
`reconnects`; the publisher's entries written per kind, `pending` and `dropped`; the subscriber's
entries read per kind and `relay_lag_s`, the age of the newest entry of the last read (its
stream id is the Redis server's clock in ms: across hosts this includes their clock skew).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from quantsaas.api.wire import encode, encode_envelope, event_message
from quantsaas.bus import Bus, Envelope, Topic
from quantsaas.engine import BOOK, WAITING, Engine
from quantsaas.model import Stamped, now_ns

STREAM = "quantsaas:bus"
MAXLEN = 100_000
MAX_PENDING = 100_000
BATCH = 500
BACKOFF_MIN_S = 0.2
BACKOFF_MAX_S = 5.0
READ_BLOCK_MS = 1000
STALE_AFTER_S = 10.0
MAX_DELTAS = 100_000

log = logging.getLogger(__name__)

Item = tuple[bytes, Topic, int, str]


def connect(url: str) -> Redis:
    return Redis.from_url(url, socket_connect_timeout=2.0, socket_timeout=READ_BLOCK_MS / 1000 + 5)


class _Link:
    def __init__(self, url: str) -> None:
        self.url = url
        self.connected = False
        self.ever_connected = False
        self.reconnects = 0
        """Connections established after the first one (each follows a lost connection)."""

    def _down(self, exc: BaseException) -> None:
        if self.connected:
            log.warning("redis connection lost: %s", exc, extra={"url": self.url})
        self.connected = False

    async def run(self) -> None:
        delay = BACKOFF_MIN_S
        while True:
            client = connect(self.url)
            try:
                await client.ping()
                if not self.connected:
                    log.info("redis connected", extra={"url": self.url})
                if self.ever_connected:
                    self.reconnects += 1
                self.connected = self.ever_connected = True
                delay = BACKOFF_MIN_S
                await self._session(client)
            except (RedisError, OSError) as exc:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    # redis-py can turn a cancellation into a connection error: stop anyway
                    raise asyncio.CancelledError from exc
                self._down(exc)
            finally:
                with contextlib.suppress(Exception):
                    await client.aclose()
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX_S)

    async def _session(self, client: Redis) -> None:
        raise NotImplementedError


class PublishingBus(Bus):
    """The in-process bus, plus a copy of every message for Redis."""

    publisher: RedisPublisher | None = None

    def publish(self, topic: Topic, event: Stamped) -> Envelope:
        envelope = super().publish(topic, event)
        if self.publisher is not None:
            self.publisher.enqueue((b"m", topic, envelope.seq, encode_envelope(envelope)))
        return envelope


class RelayBus(Bus):
    """An API process's bus: only relayed messages reach clients. Local services (analytics,
    consolidated) see no events there, and anything they publish would clash with the ingest
    process's seq numbers, so it is dropped."""

    def publish(self, topic: Topic, event: Stamped) -> Envelope:
        return Envelope(topic, self.last_seq(topic), event)


class RedisPublisher(_Link):
    def __init__(self, url: str, engine: Engine, snapshot_s: float = 1.0) -> None:
        super().__init__(url)
        self.engine = engine
        self.snapshot_s = snapshot_s
        self.pending: collections.deque[Item] = collections.deque()
        self.dropped = 0
        self.written_messages = 0
        self.written_snapshots = 0
        self._wake = asyncio.Event()

    def enqueue(self, item: Item) -> None:
        if len(self.pending) >= MAX_PENDING:
            self.dropped += 1
            return
        self.pending.append(item)
        self._wake.set()

    def queue_snapshots(self) -> None:
        engine = self.engine
        for key, book in engine.books.items():
            if book.valid:
                topic: Topic = (BOOK, *key)
                seq = engine.bus.last_seq(topic)
                wire = encode(event_message(BOOK, seq, book.to_snapshot()))
                self.enqueue((b"s", topic, seq, wire))

    def ready_checks(self) -> dict[str, bool]:
        return {"redis_ok": self.connected}

    async def _session(self, client: Redis) -> None:
        self.queue_snapshots()  # resync every API process's books after an outage
        next_snapshot = time.monotonic() + self.snapshot_s
        pending = self.pending
        while True:
            if time.monotonic() >= next_snapshot:
                self.queue_snapshots()
                next_snapshot = time.monotonic() + self.snapshot_s
            if not pending:
                self._wake.clear()
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(max(0.0, next_snapshot - time.monotonic())):
                        await self._wake.wait()
                continue
            batch = [pending[i] for i in range(min(BATCH, len(pending)))]
            pipe = client.pipeline(transaction=False)
            snapshots = 0
            for kind, (channel, venue, symbol), seq, wire in batch:
                if kind == b"s":
                    snapshots += 1
                fields: dict[Any, Any] = {
                    "k": kind,
                    "c": channel,
                    "v": venue,
                    "s": symbol,
                    "q": seq,
                    "w": wire,
                }
                _ = pipe.xadd(STREAM, fields, maxlen=MAXLEN, approximate=True)
            await pipe.execute()
            for _ in batch:
                pending.popleft()  # only once written: a failed batch is sent again
            self.written_snapshots += snapshots
            self.written_messages += len(batch) - snapshots


class RedisSubscriber(_Link):
    def __init__(self, url: str, engine: Engine) -> None:
        super().__init__(url)
        self.engine = engine
        self.bus: Bus = engine.bus
        self.last_id: bytes | None = None
        self.last_message_ns: int | None = None
        self.read_entries = 0
        self.read_snapshots = 0
        self.relay_lag_s: float | None = None
        """Age of the newest entry of the last read, when it was read."""
        self.snapshots: dict[Topic, tuple[int, str]] = {}
        self.deltas: dict[Topic, list[str]] = {}
        engine.relayed_state = self.relayed_state

    def relayed_state(self, topic: Topic) -> tuple[int, list[str]] | None:
        snapshot = self.snapshots.get(topic)
        if snapshot is None:
            return (WAITING, []) if topic[0] == BOOK else None
        deltas = self.deltas.get(topic, [])
        return snapshot[0] + len(deltas), [snapshot[1], *deltas]

    def ready_checks(self) -> dict[str, bool]:
        last = self.last_message_ns
        fresh = last is not None and (now_ns() - last) / 1e9 < STALE_AFTER_S
        return {"redis_ok": self.connected, "data_live": fresh}

    async def _session(self, client: Redis) -> None:
        if self.last_id is None:
            newest: Any = await client.xrevrange(STREAM, count=1)
            self.last_id = newest[0][0] if newest else b"0-0"
        while True:
            streams: Any = {STREAM: self.last_id}
            reply: Any = await client.xread(streams, count=BATCH, block=READ_BLOCK_MS)
            for _stream, entries in reply:
                for entry_id, fields in entries:
                    self.last_id = entry_id
                    self.apply(fields)
                self.read_entries += len(entries)
                at_ns = self.last_message_ns = now_ns()
                if entries:
                    added_ms = int(entries[-1][0].split(b"-", 1)[0])
                    self.relay_lag_s = max(0.0, at_ns / 1e9 - added_ms / 1e3)

    def apply(self, fields: dict[bytes, bytes]) -> None:
        topic: Topic = (fields[b"c"].decode(), fields[b"v"].decode(), fields[b"s"].decode())
        seq = int(fields[b"q"])
        wire = fields[b"w"].decode()
        bus = self.bus
        if fields[b"k"] == b"s":
            self.read_snapshots += 1
            if seq < bus.last_seq(topic):
                return  # older than what was relayed already
            bus.advance(topic, seq)  # when ahead: messages were lost, clients re-snapshot
            self.snapshots[topic] = (seq, wire)
            self.deltas[topic] = []
            return
        if not bus.relay(topic, seq, wire) or topic not in self.snapshots:
            return
        snapshot_seq, _ = self.snapshots[topic]
        deltas = self.deltas[topic]
        if snapshot_seq + len(deltas) + 1 != seq or len(deltas) >= MAX_DELTAS:
            del self.snapshots[topic]  # not contiguous: wait for the next snapshot
            return
        deltas.append(wire)
