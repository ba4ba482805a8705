"""Scale-out on Redis: ingest processes publish the bus, API processes relay it to clients.

Why Redis Streams, not Pub/Sub: Pub/Sub is at-most-once with no history, so an API process that
loses its connection for a moment silently loses messages. A stream (`XADD ... MAXLEN ~`) keeps
the recent past: a subscriber remembers the last entry id it read and, after a reconnect,
`XREAD`s from there, so a dropped connection costs nothing (a Redis server that restarts
empty loses what it held, and clients see a gap and a fresh snapshot). One stream holds
every topic, so all API processes see one global order.

Entries: `k` kind (`m` a bus message, `s` a book snapshot), `c`/`v`/`s` the topic, `q` the
ingest process's per-topic seq, `w` the encoded wire JSON (`Envelope.text`), byte-identical
for every client of every API process. Beside the stream, the key `CATALOG` holds what the ingest
process serves (its instruments, exactly, and its stream channels), written on every connect, so
an API process knows them without building a feed.

- `MirroredBus` (ingest role) is the in-process bus plus a copy of every message for Redis.
- `RedisPublisher` queues every published message (bounded; while Redis is
  down the queue holds up to `MAX_PENDING` messages, later ones are dropped and become gaps),
  writes them in pipelined batches, adds a snapshot of every valid book every `snapshot_s` and
  after each (re)connect, and reconnects with exponential backoff.
- `RedisSubscriber` (api role) reads from the newest entry on, re-publishes each message on its
  local `RelayBus` with the ingest's seq (`Bus.relay`), and keeps the latest book snapshot plus the
  deltas after it, so a new book subscriber gets snapshot + deltas up to the current seq
  (`RelayReadModel`, the api role's read model). A seq jump (messages lost) is a `gap` for
  clients and a book stream is re-snapshotted.

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
from collections.abc import Collection, Mapping
from dataclasses import asdict
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from quantsaas.book import L2Book
from quantsaas.bus import Bus, Envelope, Topic
from quantsaas.channels import BOOK
from quantsaas.errors import BusError
from quantsaas.market import InstrumentState
from quantsaas.model import Instrument, OptionSpec, Stamped, now_ns
from quantsaas.readmodel import Initial, LocalReadModel
from quantsaas.status import SourceState
from quantsaas.wire import event_text

STREAM = "quantsaas:bus"
CATALOG = "quantsaas:catalog"
MAXLEN = 100_000
MAX_PENDING = 100_000
BATCH = 500
BACKOFF_MIN_S = 0.2
BACKOFF_MAX_S = 5.0
READ_BLOCK_MS = 1000
STALE_AFTER_S = 10.0
MAX_DELTAS = 100_000
MAX_RELAY_LAG_S = 5.0
"""An API process this far behind the stream skips to its newest entry (clients get gaps and fresh
snapshots), counts it (`fell_behind`) and is not ready until it is current again."""

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


class MirroredBus(Bus):
    """The in-process bus, plus a copy of every message for Redis (the ingest role)."""

    publisher: RedisPublisher | None = None

    def publish(self, topic: Topic, event: Stamped) -> Envelope:
        envelope = super().publish(topic, event)
        if self.publisher is not None:
            self.publisher.enqueue((b"m", topic, envelope.seq, envelope.text()))
        return envelope


class RelayBus(Bus):
    """An API process's bus: only messages relayed from Redis reach its clients. The api role
    installs no producers, so a publish here is a wiring mistake."""

    def publish(self, topic: Topic, event: Stamped) -> Envelope:
        raise BusError(f"the api role publishes nothing (got {topic})")


def catalog_json(instruments: Collection[Instrument], channels: Collection[str]) -> bytes:
    """What an ingest process serves, exactly (instrument grids and option specs)."""
    return orjson.dumps(
        {
            "instruments": [
                {
                    "venue": i.venue,
                    "base": i.base,
                    "quote": i.quote,
                    "native_symbol": i.native_symbol,
                    "price_scale": i.price_scale,
                    "size_scale": i.size_scale,
                    "tick_size": i.tick_size,
                    "lot_size": i.lot_size,
                    "option": None if i.option is None else asdict(i.option),
                }
                for i in instruments
            ],
            "channels": sorted(channels),
        }
    )


def catalog_from_json(data: bytes) -> tuple[dict[tuple[str, str], Instrument], list[str]]:
    body: Any = orjson.loads(data)
    instruments: dict[tuple[str, str], Instrument] = {}
    for item in body["instruments"]:
        option = item.pop("option")
        instrument = Instrument(**item, option=None if option is None else OptionSpec(**option))
        instruments[instrument.key] = instrument
    return instruments, list(body["channels"])


class RedisPublisher(_Link):
    def __init__(
        self, url: str, bus: Bus, read_model: LocalReadModel, snapshot_s: float = 1.0
    ) -> None:
        super().__init__(url)
        self.bus = bus
        self.read_model = read_model
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
        read_model = self.read_model
        for key in read_model.instruments():
            book = read_model.book(key)
            if book is not None and book.valid:
                topic: Topic = (BOOK, *key)
                seq = self.bus.last_seq(topic)
                self.enqueue((b"s", topic, seq, event_text(BOOK, seq, book.to_snapshot())))

    def ready_checks(self) -> dict[str, bool]:
        return {"redis_ok": self.connected}

    async def _session(self, client: Redis) -> None:
        read_model = self.read_model
        catalog = catalog_json(read_model.instruments().values(), read_model.channels())
        await client.set(CATALOG, catalog)
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
    def __init__(self, url: str, bus: Bus) -> None:
        super().__init__(url)
        self.bus = bus
        self.read_model = RelayReadModel(self)
        self.instruments: dict[tuple[str, str], Instrument] = {}
        self.channels: list[str] = []
        self.last_id: bytes | None = None
        self.last_message_ns: int | None = None
        self.read_entries = 0
        self.read_snapshots = 0
        self.relay_lag_s: float | None = None
        """Age of the newest entry of the last read, when it was read."""
        self.fell_behind = 0
        """Times the relay was more than MAX_RELAY_LAG_S behind and skipped ahead."""
        self.snapshots: dict[Topic, tuple[int, str]] = {}
        self.deltas: dict[Topic, list[str]] = {}

    def initial(self, topic: Topic) -> Initial | None:
        snapshot = self.snapshots.get(topic)
        if snapshot is None:
            return Initial(0, pending=True) if topic[0] == BOOK else None
        deltas = self.deltas.get(topic, [])
        return Initial(snapshot[0] + len(deltas), [snapshot[1], *deltas])

    def source_state(self, at_ns: int) -> SourceState:
        """The relay as a data source of the stream (status.py)."""
        if not self.connected:
            return SourceState(False, "redis unreachable: the market data relay is down")
        last = self.last_message_ns
        if last is None or (at_ns - last) / 1e9 >= STALE_AFTER_S:
            return SourceState(False, f"no data from the ingest process for {STALE_AFTER_S:g} s")
        return SourceState(True)

    def ready_checks(self) -> dict[str, bool]:
        last = self.last_message_ns
        fresh = last is not None and (now_ns() - last) / 1e9 < STALE_AFTER_S
        lag = self.relay_lag_s
        current = lag is None or lag <= MAX_RELAY_LAG_S
        return {"redis_ok": self.connected, "data_live": fresh, "relay_current": current}

    async def _catalog(self, client: Redis) -> None:
        data: Any = await client.get(CATALOG)
        if data:
            self.instruments, self.channels = catalog_from_json(data)

    async def _session(self, client: Redis) -> None:
        await self._catalog(client)
        if self.last_id is None:
            newest: Any = await client.xrevrange(STREAM, count=1)
            self.last_id = newest[0][0] if newest else b"0-0"
        while True:
            streams: Any = {STREAM: self.last_id}
            reply: Any = await client.xread(streams, count=BATCH, block=READ_BLOCK_MS)
            if not self.instruments:  # the ingest process had not announced itself yet
                await self._catalog(client)
            for _stream, entries in reply:
                for entry_id, fields in entries:
                    self.last_id = entry_id
                    self.apply(fields)
                self.read_entries += len(entries)
                at_ns = self.last_message_ns = now_ns()
                if entries:
                    added_ms = int(entries[-1][0].split(b"-", 1)[0])
                    self.relay_lag_s = max(0.0, at_ns / 1e9 - added_ms / 1e3)
                    if self.relay_lag_s > MAX_RELAY_LAG_S:
                        await self._skip_ahead(client)

    async def _skip_ahead(self, client: Redis) -> None:
        """Too far behind to catch up: continue from the newest entry. Every topic's next
        message then jumps in seq (a `gap` for clients, `Bus.relay`), and the cached book states
        are dropped, so book subscribers get the ingest's next snapshot (within a second)."""
        self.fell_behind += 1
        log.warning(
            "api process %.1f s behind the redis stream: skipping ahead", self.relay_lag_s or 0
        )
        newest: Any = await client.xrevrange(STREAM, count=1)
        if newest:
            self.last_id = newest[0][0]
        self.snapshots.clear()
        self.deltas.clear()

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


class RelayReadModel:
    """The api role's read model: the ingest process's catalog and the relayed book state."""

    def __init__(self, link: RedisSubscriber) -> None:
        self._link = link

    def instruments(self) -> Mapping[tuple[str, str], Instrument]:
        return self._link.instruments

    def channels(self) -> Collection[str]:
        return self._link.channels

    def initial(self, topic: Topic) -> Initial | None:
        return self._link.initial(topic)

    def book(self, key: tuple[str, str]) -> L2Book | None:
        return None  # books live in the ingest process; clients get them on the stream

    def state(self, key: tuple[str, str]) -> InstrumentState | None:
        return None
