"""Prometheus metrics at /metrics, one registry per app.

Almost everything is read at scrape time from state the service already keeps (FeedStats, the
books, the bus, the stream counters, the recorder), so the hot paths gain nothing but the
WebSocket send counter. HTTP latency is a histogram per route template, measured by a small
pure-ASGI middleware that leaves WebSocket scopes alone.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import prometheus_client
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from quantsaas.api.stream import StreamCounters
from quantsaas.model import now_ns
from quantsaas.runtime import Runtime

if TYPE_CHECKING:
    from quantsaas.bus_redis import RedisPublisher, RedisSubscriber
    from quantsaas.store.recorder import Recorder

# counters and histograms would otherwise add a `_created` series each (doubling the count)
prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]

PREFIX = "quantsaas"
UNMATCHED = "<unmatched>"
"""Route label of requests no route matched (the dashboard's files, 404s): never the raw path."""
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _counter(name: str, doc: str, labels: Iterable[str] = ()) -> CounterMetricFamily:
    return CounterMetricFamily(f"{PREFIX}_{name}", doc, labels=list(labels))


def _gauge(name: str, doc: str, labels: Iterable[str] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"{PREFIX}_{name}", doc, labels=list(labels))


class ServiceCollector(Collector):
    """Feeds, books, bus, stream and recorder, computed from their state at scrape time."""

    def __init__(self, runtime: Runtime, stream: StreamCounters, app_state: Any) -> None:
        self.runtime = runtime
        self.stream = stream
        self.app_state = app_state

    def collect(self) -> Iterator[Metric]:
        yield from self._feeds()
        yield from self._books()
        yield from self._bus()
        yield from self._consumers()
        yield from self._stream()
        recorder: Recorder | None = self.runtime.recorder
        if recorder is not None:
            yield from self._recorder(recorder)
        link: RedisPublisher | RedisSubscriber | None = self.runtime.link
        if link is not None:
            yield from self._redis(link)

    def _feeds(self) -> Iterator[Metric]:
        at_ns = now_ns()
        venue = ["venue"]
        messages = _counter("feed_messages_received", "Messages received from the venue", venue)
        size = _counter("feed_received_bytes", "Bytes received from the venue", venue)
        gaps = _counter("feed_gaps", "Sequence gaps detected", venue)
        resyncs = _counter("feed_resyncs", "Book resynchronisations", venue)
        reconnects = _counter("feed_reconnects", "Venue reconnections", venue)
        malformed = _counter("feed_malformed_messages", "Frames that could not be parsed", venue)
        live = _gauge("feed_live", "1 when the feed state is live", venue)
        age = _gauge("feed_last_message_age_seconds", "Time since the last message", venue)
        for feed in self.runtime.feeds:
            stats, labels = feed.stats, [feed.venue]
            messages.add_metric(labels, stats.messages)
            size.add_metric(labels, stats.bytes)
            gaps.add_metric(labels, stats.gaps)
            resyncs.add_metric(labels, stats.resyncs)
            reconnects.add_metric(labels, stats.reconnects)
            malformed.add_metric(labels, stats.malformed)
            live.add_metric(labels, 1 if stats.state.value == "live" else 0)  # FeedState.LIVE
            seconds = stats.last_message_age_s(at_ns)
            if seconds is not None:
                age.add_metric(labels, seconds)
        yield from (messages, size, gaps, resyncs, reconnects, malformed, live, age)
        engine = self.runtime.engine
        if engine is None:
            return
        requested = _counter("engine_resyncs_requested", "Books rejected by the engine")
        requested.add_metric([], engine.resyncs_requested)
        rejected = _counter("engine_rejected_deltas", "Deltas dropped while a book was not ready")
        rejected.add_metric([], engine.rejected_deltas)
        yield from (requested, rejected)

    def _books(self) -> Iterator[Metric]:
        at_ns = now_ns()
        labels = ["venue", "symbol"]
        age = _gauge("book_age_seconds", "Time since the book last changed (receive time)", labels)
        valid = _gauge("book_valid", "1 while the book is synchronised and served", labels)
        read_model = self.runtime.read_model
        for venue, symbol in read_model.instruments():
            book = read_model.book((venue, symbol))
            if book is None:
                continue
            valid.add_metric([venue, symbol], 1 if book.valid else 0)
            if book.ts_recv:
                age.add_metric([venue, symbol], max(0.0, (at_ns - book.ts_recv) / 1e9))
        yield from (age, valid)

    def _bus(self) -> Iterator[Metric]:
        bus = self.runtime.bus
        published = _counter("bus_published_messages", "Messages published on the bus")
        published.add_metric([], bus.published)
        dropped = _counter("bus_dropped_messages", "Messages dropped for slow subscribers")
        dropped.add_metric([], bus.dropped)
        depths = [subscription.pending for subscription in tuple(bus.subscriptions)]
        subscribers = _gauge("bus_subscribers", "Open bus subscriptions")
        subscribers.add_metric([], len(depths))
        queued = _gauge("bus_queued_messages", "Messages waiting in all subscriber queues")
        queued.add_metric([], sum(depths))
        deepest = _gauge("bus_queue_depth_max", "Longest subscriber queue")
        deepest.add_metric([], max(depths, default=0))
        yield from (published, dropped, subscribers, queued, deepest)

    def _consumers(self) -> Iterator[Metric]:
        labels = ["consumer"]
        delivered = _counter(
            "consumer_delivered_messages", "Messages handed to a bus consumer", labels
        )
        errors = _counter("consumer_errors", "Messages a bus consumer failed on", labels)
        for consumer in self.runtime.bus.consumers:
            delivered.add_metric([consumer.name], consumer.delivered)
            errors.add_metric([consumer.name], consumer.errors)
        yield from (delivered, errors)

    def _stream(self) -> Iterator[Metric]:
        stream = self.stream
        clients = _gauge("ws_clients", "Connected WebSocket clients")
        clients.add_metric([], stream.clients)
        connections = _counter("ws_connections", "WebSocket connections accepted")
        connections.add_metric([], stream.connections)
        sent = _counter("ws_messages_sent", "Messages sent to WebSocket clients")
        sent.add_metric([], stream.messages_sent)
        yield from (clients, connections, sent)

    def _redis(self, link: RedisPublisher | RedisSubscriber) -> Iterator[Metric]:
        """The Redis bus link (bus_redis.py): ingest processes publish, API processes relay."""
        connected = _gauge("redis_connected", "1 while the Redis bus connection is up")
        connected.add_metric([], 1 if link.connected else 0)
        reconnects = _counter("redis_reconnects", "Redis connections re-established after a loss")
        reconnects.add_metric([], link.reconnects)
        yield from (connected, reconnects)
        kind = ["kind"]
        from quantsaas.bus_redis import RedisPublisher  # only with a Redis bus (api/ingest)

        if isinstance(link, RedisPublisher):
            written = _counter("redis_entries_published", "Entries written to the stream", kind)
            written.add_metric(["message"], link.written_messages)
            written.add_metric(["snapshot"], link.written_snapshots)
            pending = _gauge("redis_pending_messages", "Entries waiting to be written to Redis")
            pending.add_metric([], len(link.pending))
            dropped = _counter(
                "redis_dropped_messages", "Entries dropped while the pending queue was full"
            )
            dropped.add_metric([], link.dropped)
            yield from (written, pending, dropped)
            return
        read = _counter("redis_entries_relayed", "Entries read from the stream and relayed", kind)
        read.add_metric(["message"], link.read_entries - link.read_snapshots)
        read.add_metric(["snapshot"], link.read_snapshots)
        behind = _counter(
            "redis_relay_fell_behind", "Times the relay was too far behind and skipped ahead"
        )
        behind.add_metric([], link.fell_behind)
        yield from (read, behind)
        if link.relay_lag_s is not None:
            lag = _gauge(
                "redis_relay_lag_seconds",
                "Age of the newest stream entry at its last read (XADD to relay)",
            )
            lag.add_metric([], link.relay_lag_s)
            yield lag
        if link.last_message_ns is not None:
            age = _gauge("redis_last_read_age_seconds", "Time since the last entries were read")
            age.add_metric([], max(0.0, (now_ns() - link.last_message_ns) / 1e9))
            yield age

    def _recorder(self, recorder: Recorder) -> Iterator[Metric]:
        status = recorder.status
        events = _counter("recorder_events_written", "Events written to Parquet")
        events.add_metric([], status.events)
        dropped = _counter("recorder_dropped", "Events or frames lost to write errors")
        dropped.add_metric([], status.dropped)
        errors = _counter("recorder_errors", "Recorder write errors")
        errors.add_metric([], status.errors)
        pending = _gauge("recorder_pending", "Events and frames waiting for the writer")
        pending.add_metric([], recorder.pending)
        yield from (events, dropped, errors, pending)
        floor = _gauge("recorder_min_free_bytes", "Free space below which recording pauses")
        floor.add_metric([], recorder.config.min_free_bytes)
        paused = _gauge("recorder_paused", "1 while recording is paused for lack of free space")
        paused.add_metric([], 1 if status.paused else 0)
        freed = _counter("recorder_days_freed", "Recorded days deleted to make room")
        freed.add_metric([], status.days_freed)
        yield from (floor, paused, freed)
        if status.free_bytes is not None:
            free = _gauge("recorder_free_bytes", "Free space of the data filesystem")
            free.add_metric([], status.free_bytes)
            yield free


class Metrics:
    """The app's own registry: several apps in one process never share series."""

    def __init__(self, runtime: Runtime, stream: StreamCounters, app_state: Any) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(ServiceCollector(runtime, stream, app_state))
        self.http_latency = Histogram(
            f"{PREFIX}_http_request_duration_seconds",
            "HTTP request latency by route template",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

    def render(self) -> bytes:
        return prometheus_client.generate_latest(self.registry)


def route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED


class HttpMetricsMiddleware:
    """Times each HTTP request into the latency histogram; other scopes pass through."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            self.metrics.http_latency.labels(
                scope["method"], route_template(scope), str(status)
            ).observe(time.perf_counter() - started)
