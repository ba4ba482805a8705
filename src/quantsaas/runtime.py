"""The composition root: the one place that builds and wires the parts of each role.

    role    feeds           engine  bus               consumers                  read model
    all     from settings   yes     memory            analytics, consolidated,   local
                                                      recorder (serve, record)
    ingest  from settings   yes     memory + Redis    the same                   local
                                    mirror
    api     none            none    relay of Redis    none (no producers)        relayed
    replay  a recorded day  yes     memory            analytics, consolidated    local
            (event time: the clock follows the replayed receive times)
    backtest  as replay     yes     memory            the same + the backtest    local
                                                      (`backtest`: its handler)

Everything downstream of the engine is a bus consumer declared here (`Bus.consume`); what a
consumer derives it publishes back on the bus; the channels it serves, with their initial state,
are registered here on the read model. Nothing else constructs these parts or changes another
part's state. `Runtime.run()` runs the feeds and every background job until cancelled.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from quantsaas.bus import Bus, Handler
from quantsaas.channels import BOOK, CHANNELS, TRADES
from quantsaas.clock import Clock, EventClock, WallClock
from quantsaas.config import Settings
from quantsaas.errors import ConfigError, quote
from quantsaas.model import Instrument
from quantsaas.readmodel import LocalReadModel, ReadModel
from quantsaas.status import Sources, SourceState, StatusWatcher

if TYPE_CHECKING:
    # the parts are imported by the builders of the roles that have them, so that a process
    # loads only what its role runs: an api process no feed, engine or consumer code, and no
    # NumPy analytics or store writer of theirs (bench/README.md, bench_startup.py)
    from quantsaas.analytics.live import AnalyticsConfig, AnalyticsService
    from quantsaas.book.consolidated_live import ConsolidatedService
    from quantsaas.engine import Engine
    from quantsaas.feeds.base import Feed
    from quantsaas.store.recorder import Recorder, RecorderConfig

log = logging.getLogger(__name__)

ROLES = ("all", "ingest", "api", "replay", "backtest")
Job = Callable[[], Coroutine[Any, Any, None]]


@dataclass
class Runtime:
    """The parts of one process, as built for its role."""

    role: str
    settings: Settings
    bus: Bus
    read_model: ReadModel
    clock: Clock
    feeds: tuple[Feed, ...] = ()
    engine: Engine | None = None
    analytics: AnalyticsService | None = None
    consolidated: ConsolidatedService | None = None
    recorder: Recorder | None = None
    link: Any = None
    """The Redis link (`bus_redis.RedisPublisher` or `RedisSubscriber`), None on memory."""
    status: StatusWatcher | None = None
    """Tells stream clients when a source (a venue, the Redis relay) goes down or comes back."""
    jobs: list[Job] = field(default_factory=list)

    def parts(self) -> set[str]:
        """Names of the parts this runtime has (what a role builds is tested by name)."""
        names = {"bus", "read_model"}
        for name in ("engine", "analytics", "consolidated", "recorder", "link", "status"):
            if getattr(self, name) is not None:
                names.add(name)
        if self.feeds:
            names.add("feeds")
        return names

    async def run(self) -> None:
        """Run the feeds and every background job until cancelled."""
        async with asyncio.TaskGroup() as group:
            if self.engine is not None:
                group.create_task(self.engine.run(), name="engine")
            for job in self.jobs:
                group.create_task(job(), name=f"job:{getattr(job, '__qualname__', 'job')}")


def build(
    settings: Settings,
    role: str = "all",
    *,
    feeds: Sequence[Feed] | None = None,
    bus_url: str = "memory",
    clock: Clock | None = None,
    record: bool = False,
    analytics: AnalyticsConfig | None = None,
    backtest: Handler | None = None,
) -> Runtime:
    """Build the runtime of `role`. `feeds` default to the settings' (`feeds.registry`); a
    replay passes the recorded day's feeds. `record` adds the recorder (serve, record)."""
    if role not in ROLES:
        raise ConfigError(f"unknown role {quote(role)}; use one of {', '.join(ROLES)}")
    if role in ("ingest", "api") and bus_url == "memory":
        raise ConfigError(f"--role {role} needs --bus redis://host:port/db")
    if bus_url != "memory" and not bus_url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(f"--bus must be memory or redis://host:port/db, not {quote(bus_url)}")
    if role == "api":
        return _api(settings, bus_url)
    if role == "backtest" and backtest is None:
        raise ConfigError("the backtest role needs the backtest's handler")
    from quantsaas.engine import Engine
    from quantsaas.feeds.base import STALE_AFTER_S

    if role in ("replay", "backtest"):
        clock = clock or EventClock()
    clock = clock or WallClock()
    if feeds is None:
        from quantsaas.feeds.registry import build_feeds

        # serving: a venue unreachable at start-up retries in its run loop (issue 15.4)
        feeds = build_feeds(settings, defer_unreachable=role in ("all", "ingest"))
    link: Any = None
    bus: Bus
    if bus_url == "memory":
        bus = Bus()
    else:
        from quantsaas import bus_redis

        bus = bus_redis.MirroredBus()
    engine = Engine(feeds, bus.publish, clock)
    bounds = {feed.venue: feed.stats.stale_after_s for feed in feeds}
    read_model = LocalReadModel(
        bus, engine.books, engine.market, lambda venue: bounds.get(venue, STALE_AFTER_S)
    )

    def adopt(feed: Feed, instruments: Sequence[Instrument]) -> None:
        """Instruments a feed learnt while running (the Deribit chain after an offline start)."""
        engine.adopt(feed, instruments)
        for instrument in instruments:
            read_model.add_instrument(instrument, engine.books[instrument.key])

    for feed in feeds:
        feed.on_instruments = adopt
    runtime = Runtime(role, settings, bus, read_model, clock, tuple(feeds), engine)
    for channel in CHANNELS:
        read_model.register_channel(
            channel, _book_snapshot(read_model) if channel == BOOK else None
        )
    _analytics(runtime, read_model, analytics, event_time=isinstance(clock, EventClock))
    _consolidated(runtime, read_model)
    if record and role not in ("replay", "backtest"):
        _recorder(runtime)
    if backtest is not None:
        runtime.bus.consume("backtest", (TRADES, BOOK), backtest)
    if bus_url != "memory":
        from quantsaas import bus_redis

        assert isinstance(bus, bus_redis.MirroredBus)
        link = bus.publisher = bus_redis.RedisPublisher(bus_url, bus, read_model)
        runtime.link = link
        runtime.jobs.append(link.run)
    if role != "replay":
        _status(runtime, lambda at: {feed.venue: _feed_state(feed) for feed in runtime.feeds})
    return runtime


def _feed_state(feed: Feed) -> SourceState:
    """A venue is down while its connection is (starting, disconnected, stopped); a quiet but
    connected venue is the stall watchdog's business (it reconnects, and then it is down)."""
    from quantsaas.feeds.base import FeedState

    stats = feed.stats
    return SourceState(stats.state in (FeedState.LIVE, FeedState.RESYNCING), stats.last_error)


def _status(runtime: Runtime, sources: Sources) -> None:
    runtime.status = StatusWatcher(runtime.bus, sources)
    runtime.jobs.append(runtime.status.run)


def _book_snapshot(read_model: LocalReadModel) -> Callable[[Any], Any]:
    def initial(instrument: Any) -> Any:
        # the read model's books: the engine's and the consolidated pseudo venue's
        book = read_model.book(instrument.key)
        return book.to_snapshot() if book is not None and book.valid else None

    return initial


def _analytics(
    runtime: Runtime, read_model: LocalReadModel, config: AnalyticsConfig | None, event_time: bool
) -> None:
    from quantsaas.analytics.live import INPUTS as ANALYTICS_INPUTS
    from quantsaas.analytics.live import AnalyticsService

    engine = runtime.engine
    assert engine is not None
    service = AnalyticsService(
        dict(engine.instruments),
        engine.books,
        runtime.bus.publish,
        config,
        clock=runtime.clock,
        event_time=event_time,
    )
    runtime.bus.consume("analytics", ANALYTICS_INPUTS, service.on_envelope)
    for name, initial in service.channels().items():
        read_model.register_channel(name, initial)
    if not event_time:
        runtime.jobs.append(service.run_clock)
    runtime.analytics = service


def _consolidated(runtime: Runtime, read_model: LocalReadModel) -> None:
    from quantsaas.book.consolidated import QuoteEquivalence
    from quantsaas.book.consolidated_live import INPUTS as CONSOLIDATED_INPUTS
    from quantsaas.book.consolidated_live import ConsolidatedConfig, ConsolidatedService

    engine, settings = runtime.engine, runtime.settings
    assert engine is not None
    config = ConsolidatedConfig(
        QuoteEquivalence.of(settings.consolidated_quote_equivalence), settings.consolidated_depth
    )
    service = ConsolidatedService(engine.books.values(), runtime.bus.publish, config)
    for book in service.books.values():
        read_model.add_instrument(book.instrument, book)
        engine.market.register(book.instrument)
    runtime.bus.consume("consolidated", CONSOLIDATED_INPUTS, service.on_envelope)
    for name, initial in service.channels().items():
        read_model.register_channel(name, initial)
    runtime.jobs.append(service.run)
    runtime.consolidated = service


def _recorder(runtime: Runtime) -> None:
    from quantsaas.feeds.transport import WsFeed
    from quantsaas.store.recorder import INPUTS as RECORDER_INPUTS
    from quantsaas.store.recorder import Recorder

    settings, engine = runtime.settings, runtime.engine
    assert engine is not None
    recorder = Recorder(recorder_config(settings), engine.books)
    runtime.bus.consume("recorder", RECORDER_INPUTS, recorder.on_envelope)
    if settings.record_raw:
        for feed in runtime.feeds:
            if isinstance(feed, WsFeed):
                feed.taps.append(recorder.on_raw)
    runtime.jobs.append(recorder.run)
    runtime.recorder = recorder


def recorder_config(settings: Settings) -> RecorderConfig:
    from quantsaas.store.recorder import RecorderConfig

    return RecorderConfig(
        root=settings.data_dir,
        flush_s=settings.record_flush_s,
        snapshot_s=settings.record_snapshot_s,
        retention_days=settings.retention_days,
        raw=settings.record_raw,
        min_free_bytes=settings.record_min_free_mb << 20,
        free_space_retention=settings.retention_free_space,
    )


def _api(settings: Settings, bus_url: str) -> Runtime:
    from quantsaas import bus_redis

    bus = bus_redis.RelayBus()
    link = bus_redis.RedisSubscriber(bus_url, bus)
    runtime = Runtime("api", settings, bus, link.read_model, WallClock(), link=link)
    runtime.jobs.append(link.run)
    _status(runtime, lambda at: {"bus": link.source_state(at)})
    return runtime
