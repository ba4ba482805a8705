"""In-process publish/subscribe of market events by (channel, venue, symbol).

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
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeAlias, cast

from quantsaas.errors import SubscriptionClosed
from quantsaas.model import Stamped

Topic: TypeAlias = tuple[str, str, str]
"""(channel, venue, symbol)."""

SLOW_CONSUMER = "slow consumer"


class Envelope:
    """A published event with its topic and per-topic sequence number.

    `wire` is a cache slot for the encoded form, so the API encodes a message once per topic,
    not once per client.
    """

    __slots__ = ("topic", "seq", "event", "wire")

    def __init__(self, topic: Topic, seq: int, event: Stamped) -> None:
        self.topic = topic
        self.seq = seq
        self.event = event
        self.wire: str | None = None


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
        if len(queue) >= self._limits.queue_size:
            self._drop(envelope.topic)
            return
        self._flush_missed()
        queue.append(envelope)
        self._ready.set()

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
            self._queue.append(message)
            self._ready.set()

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

    def publish(self, topic: Topic, event: Stamped) -> Envelope:
        seq = self._sequences.get(topic, 0) + 1
        self._sequences[topic] = seq
        envelope = Envelope(topic, seq, event)
        self.published += 1
        subscribers = self._subscribers.get(topic)
        if subscribers:
            for subscription in tuple(subscribers):
                subscription._offer(envelope)
        return envelope

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
        subscribers = self._subscribers.get(topic)
        if subscribers:
            for subscription in tuple(subscribers):
                subscription._offer(envelope)
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
