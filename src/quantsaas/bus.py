"""The one fan-out: publish/subscribe of market events by topic (channel, venue, symbol).

Everything downstream of the engine is a bus consumer, in one of two explicit delivery modes:

- a `Subscription` (the WebSocket clients): a bounded queue, under the slow-subscriber rule
  below; it may lose messages, and is told so. It is read by a task (`get`), or taken whole by
  a writer it calls when it stops being empty (`waker`, `drain`): the stream writes each
  client's queue once per event-loop turn, with no task woken per message (api/fanout.py).
- a `Consumer` (in-process services declared at the composition root: the recorder, analytics,
  the consolidated market): its handler is called with each envelope of its channels, in publish
  order, at publish time. It never loses an event (nothing is queued for it), so the state it
  reads beside the event (the engine's book after that very update) is exact. What it derives
  it publishes back on the bus; publishes made while a message is being delivered are delivered
  after it, in order (FIFO), so every consumer and subscriber sees one sequence. A handler that
  raises is counted on its `Consumer` (errors, last_error: /health shows them at once) and gets
  the next event as usual: the consumer restarts at the next message.

`Bus.publish` never blocks and never waits for a subscriber: it stamps the message with the next
sequence number of its topic and offers it to each subscriber's bounded queue.

Slow-subscriber rule (tested in tests/test_bus.py):
1. While a subscriber's queue is full, new messages for it are dropped and counted per topic.
   The feed and the other subscribers are not affected.
2. When room returns, the subscriber first receives one `Gap` marker per topic that lost
   messages (with the count), then new messages. Sequence numbers also show the hole.
3. If a lag episode (from the first drop until the queue has been drained to empty) lasts longer
   than `max_lag_s`, or drops more than `max_drops` messages, the subscription is closed with
   reason "slow consumer": its reader gets `SubscriptionClosed`.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import TypeAlias, cast

from quantsaas.errors import SubscriptionClosed, quote
from quantsaas.model import Stamped, now_ns
from quantsaas.wire import event_text
from quantsaas.wsframe import PLAIN, text_frame

log = logging.getLogger(__name__)

Topic: TypeAlias = tuple[str, str, str]
"""(channel, venue, symbol)."""

SLOW_CONSUMER = "slow consumer"
FAILING_WINDOW_S = 10.0
"""A consumer that failed this recently is shown failing in /health and fails /readyz."""


class Envelope:
    """A published event with its topic and per-topic sequence number.

    `wire` is a cache slot for the encoded form (`text()`), so a message is encoded once, not
    once per client; `framed` and `deflated` cache its WebSocket frame (`frame()`), so it is
    framed (and compressed) once per compression setting, not once per client.
    """

    __slots__ = ("topic", "seq", "event", "wire", "framed", "deflated")

    def __init__(self, topic: Topic, seq: int, event: Stamped) -> None:
        self.topic = topic
        self.seq = seq
        self.event = event
        self.wire: str | None = None
        self.framed: bytes | None = None
        self.deflated: dict[int, bytes] | None = None

    def text(self) -> str:
        """The encoded message, made once and shared by every client and the Redis bus."""
        wire = self.wire
        if wire is None:
            wire = self.wire = event_text(self.topic[0], self.seq, self.event)
        return wire

    def frame(self, deflate_bits: int = PLAIN) -> bytes:
        """The message as one server-to-client WebSocket frame (wsframe.py): uncompressed, or
        compressed with a `deflate_bits` window; made once per setting and shared by every
        socket that negotiated it."""
        if deflate_bits == PLAIN:
            framed = self.framed
            if framed is None:
                framed = self.framed = text_frame(self.text().encode())
            return framed
        deflated = self.deflated
        if deflated is None:
            deflated = self.deflated = {}
        framed = deflated.get(deflate_bits)
        if framed is None:
            framed = deflated[deflate_bits] = text_frame(self.text().encode(), deflate_bits)
        return framed


@dataclass(frozen=True, slots=True)
class Gap:
    """Marker: `missed` messages of `topic` were dropped for this subscriber."""

    topic: Topic
    missed: int


@dataclass(frozen=True, slots=True)
class BusLimits:
    queue_size: int = 4096
    max_lag_s: float = 5.0
    max_drops: int = 50_000


class Subscription:
    """One consumer's bounded queue over a changing set of topics."""

    def __init__(self, bus: Bus, limits: BusLimits) -> None:
        self._bus = bus
        self._limits = limits
        self._queue: collections.deque[Envelope | Gap | str] = collections.deque()
        self._spare: collections.deque[Envelope | Gap | str] = collections.deque()
        self.waker: Callable[[], None] | None = None
        """Called instead of waking a reader when the queue stops being empty: a writer that
        takes the whole queue at once (`drain`) on its own schedule (api/fanout.py)."""
        self._ready = asyncio.Event()
        self._closed = asyncio.Event()
        self._missed: dict[Topic, int] = {}
        self._lag_started: float | None = None
        self._lag_drops = 0
        self.topics: set[Topic] = set()
        self.delivered = 0
        self.dropped = 0
        self.closed_reason: str | None = None

    @property
    def pending(self) -> int:
        return len(self._queue)

    def _offer(self, envelope: Envelope) -> None:
        if self.closed_reason is not None:
            return
        queue = self._queue
        queued = len(queue)
        if queued >= self._limits.queue_size:
            self._drop(envelope.topic)
            return
        if self._missed:
            self._flush_missed()
        queue.append(envelope)
        waker = self.waker
        if waker is None:
            self._ready.set()
        elif not queued:
            waker()

    def _flush_missed(self) -> None:
        if self._missed:
            for topic, missed in self._missed.items():
                self._queue.append(Gap(topic, missed))
            self._missed.clear()

    def _drop(self, topic: Topic) -> None:
        now = time.monotonic()
        if self._lag_started is None:
            self._lag_started = now
            self._lag_drops = 0
        self.dropped += 1
        self._bus.dropped += 1
        self._lag_drops += 1
        self._missed[topic] = self._missed.get(topic, 0) + 1
        limits = self._limits
        if now - self._lag_started > limits.max_lag_s or self._lag_drops > limits.max_drops:
            self.close(SLOW_CONSUMER)

    def put_local(self, message: str) -> None:
        """Queue an already-encoded message of the consumer's own (a reply, a snapshot).

        It keeps its place in order with published messages and ignores the queue bound: the
        consumer controls how many it adds.
        """
        if self.closed_reason is None:
            queued = len(self._queue)
            self._queue.append(message)
            if self.waker is None:
                self._ready.set()
            elif not queued:
                self.waker()

    async def get(self) -> Envelope | Gap | str:
        """Next message; raises SubscriptionClosed once closed and drained of nothing more."""
        while not self._queue:
            if self.closed_reason is not None:
                raise SubscriptionClosed(self.closed_reason)
            self._ready.clear()
            await self._ready.wait()
        if self.closed_reason == SLOW_CONSUMER:
            raise SubscriptionClosed(self.closed_reason)
        return self._pop()

    def get_nowait(self) -> Envelope | Gap | str | None:
        """Next message if one is queued, else None (for draining in batches)."""
        if not self._queue or self.closed_reason == SLOW_CONSUMER:
            return None
        return self._pop()

    def drain(self) -> collections.deque[Envelope | Gap | str] | None:
        """Everything queued, in order, taken at once (for a writer that sends in batches);
        None when nothing is queued or the subscription was closed for being slow. Gap markers
        of drops before the drain come with the next call. The batch is valid until the next
        call (two deques take turns, so draining allocates nothing)."""
        queue = self._queue
        if not queue or self.closed_reason == SLOW_CONSUMER:
            return None
        spare = self._spare
        spare.clear()
        self._queue, self._spare = spare, queue
        self._lag_started = None
        self.delivered += len(queue)
        if self._missed:
            self._flush_missed()
        return queue

    def _pop(self) -> Envelope | Gap | str:
        item = self._queue.popleft()
        if not self._queue:
            self._lag_started = None
            self._flush_missed()
        self.delivered += 1
        return item

    def add(self, topics: Iterable[Topic]) -> None:
        self._bus._attach(self, topics)

    def remove(self, topics: Iterable[Topic]) -> None:
        self._bus._detach(self, topics)

    def close(self, reason: str = "closed") -> None:
        if self.closed_reason is not None:
            return
        self.closed_reason = reason
        self._bus._detach(self, list(self.topics))
        self._bus.subscriptions.discard(self)
        self._ready.set()
        self._closed.set()

    async def wait_closed(self) -> str:
        await self._closed.wait()
        return self.closed_reason or "closed"


Handler = Callable[[Envelope], None]


class Consumer:
    """An in-process service fed synchronously with every envelope of its channels (lossless).

    Its counters are the consumer's health: `errors` and `last_error` (shown at once in /health
    and /readyz) and `delivered` (/metrics). The bus calls `handler` itself (one call per
    consumer per message: this is the hot path) and `failed` when it raises.
    """

    __slots__ = (
        "name",
        "channels",
        "handler",
        "delivered",
        "errors",
        "last_error",
        "last_error_ns",
    )

    def __init__(self, name: str, channels: Collection[str], handler: Handler) -> None:
        self.name = name
        self.channels = frozenset(channels)
        self.handler = handler
        self.delivered = 0
        self.errors = 0
        self.last_error: str | None = None
        self.last_error_ns: int | None = None

    def deliver(self, envelope: Envelope) -> None:
        try:
            self.handler(envelope)
        except Exception as exc:
            self.failed(envelope, exc)
        self.delivered += 1

    def failed(self, envelope: Envelope, exc: Exception) -> None:
        """One bad event must not stop the service or the feed: counted, shown, and on."""
        self.errors += 1
        self.last_error = f"{type(exc).__name__}: {quote(str(exc))}"
        self.last_error_ns = now_ns()
        log.exception("consumer %s failed on %s; it goes on", self.name, envelope.topic)

    def failing(self, at_ns: int, window_s: float = FAILING_WINDOW_S) -> bool:
        """Failed within the last `window_s`: not ready (readiness follows the current state)."""
        failed = self.last_error_ns
        return failed is not None and at_ns - failed < window_s * 1e9

    def health(self, at_ns: int) -> dict[str, object]:
        failed = self.last_error_ns
        return {
            "ok": not self.failing(at_ns),
            "delivered": self.delivered,
            "errors": self.errors,
            "last_error": self.last_error,
            "last_error_age_s": None if failed is None else round((at_ns - failed) / 1e9, 3),
        }


class Bus:
    """Topic-addressed fan-out with per-topic sequence numbers."""

    def __init__(self, limits: BusLimits | None = None) -> None:
        self.limits = limits or BusLimits()
        self._subscribers: dict[Topic, set[Subscription]] = {}
        self._sequences: dict[Topic, int] = {}
        self.published = 0
        self.dropped = 0
        """Messages dropped for slow subscribers, over the bus's lifetime."""
        self.subscriptions: set[Subscription] = set()
        """Open subscriptions (for queue-depth metrics)."""
        self.consumers: list[Consumer] = []
        self._consumers_of: dict[str, tuple[Consumer, ...]] = {}
        self._backlog: collections.deque[Envelope] = collections.deque()
        self._delivering = False

    def consume(self, name: str, channels: Collection[str], handler: Handler) -> Consumer:
        """Declare an in-process consumer of every topic of `channels` (composition root only)."""
        consumer = Consumer(name, channels, handler)
        self.consumers.append(consumer)
        for channel in consumer.channels:
            self._consumers_of[channel] = (*self._consumers_of.get(channel, ()), consumer)
        return consumer

    def notify(self, message: str) -> None:
        """Queue an encoded notice (a `status` message) for every open subscription."""
        for subscription in tuple(self.subscriptions):
            subscription.put_local(message)

    def publish(self, topic: Topic, event: Stamped) -> Envelope:
        seq = self._sequences.get(topic, 0) + 1
        self._sequences[topic] = seq
        envelope = Envelope(topic, seq, event)
        self.published += 1
        self._deliver(envelope)
        return envelope

    def _deliver(self, envelope: Envelope) -> None:
        if self._delivering:  # published by a consumer: after the message being delivered
            self._backlog.append(envelope)
            return
        self._delivering = True
        try:
            while True:
                self._fan_out(envelope)
                if not self._backlog:
                    break
                envelope = self._backlog.popleft()
        finally:
            self._delivering = False

    def _fan_out(self, envelope: Envelope) -> None:
        topic = envelope.topic
        consumers = self._consumers_of.get(topic[0])
        if consumers:
            for consumer in consumers:
                try:
                    consumer.handler(envelope)
                except Exception as exc:
                    consumer.failed(envelope, exc)
                consumer.delivered += 1
        subscribers = self._subscribers.get(topic)
        if subscribers:
            for subscription in tuple(subscribers):
                subscription._offer(envelope)

    def relay(self, topic: Topic, seq: int, wire: str) -> bool:
        """Deliver a message numbered and encoded elsewhere (an API process behind Redis, see
        bus_redis.py). Keeps the sender's `seq`; a duplicate (seq already seen) is ignored and
        a jump forward becomes a `Gap` for every subscriber of the topic."""
        if seq <= self._sequences.get(topic, 0):
            return False
        self.advance(topic, seq - 1)
        self._sequences[topic] = seq
        # the event is never read: the wire form is already there
        envelope = Envelope(topic, seq, cast(Stamped, None))
        envelope.wire = wire
        self.published += 1
        self._deliver(envelope)
        return True

    def advance(self, topic: Topic, seq: int) -> bool:
        """Move `topic` forward to `seq`; messages skipped over are reported to subscribers as
        a gap. False when `seq` is not ahead of the topic."""
        last = self._sequences.get(topic, 0)
        if seq <= last:
            return False
        self._sequences[topic] = seq
        if last:
            for subscription in tuple(self._subscribers.get(topic, ())):
                subscription._missed[topic] = subscription._missed.get(topic, 0) + seq - last
        return True

    def last_seq(self, topic: Topic) -> int:
        """Sequence number of the last message published on `topic` (0 if none)."""
        return self._sequences.get(topic, 0)

    def subscribe(
        self, topics: Iterable[Topic] = (), limits: BusLimits | None = None
    ) -> Subscription:
        subscription = Subscription(self, limits or self.limits)
        self.subscriptions.add(subscription)
        subscription.add(topics)
        return subscription

    def subscriber_count(self, topic: Topic | None = None) -> int:
        if topic is not None:
            return len(self._subscribers.get(topic, ()))
        return len({sub for subs in self._subscribers.values() for sub in subs})

    def _attach(self, subscription: Subscription, topics: Iterable[Topic]) -> None:
        for topic in topics:
            self._subscribers.setdefault(topic, set()).add(subscription)
            subscription.topics.add(topic)

    def _detach(self, subscription: Subscription, topics: Iterable[Topic]) -> None:
        for topic in topics:
            subscribers = self._subscribers.get(topic)
            if subscribers is not None:
                subscribers.discard(subscription)
                if not subscribers:
                    del self._subscribers[topic]
            subscription.topics.discard(topic)
