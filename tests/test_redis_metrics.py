"""/metrics of the Redis bus link: publisher and subscriber on a real redis-server, in-process."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import SimpleNamespace

import pytest
from prometheus_client.parser import text_string_to_metric_families

from helpers import RedisServer, ScriptedFeed, delta, engine_of, make_instrument, snapshot
from quantsaas import runtime
from quantsaas.api.metrics import Metrics
from quantsaas.api.stream import StreamCounters
from quantsaas.bus_redis import RedisPublisher, RedisSubscriber
from quantsaas.config import Settings
from quantsaas.model import Instrument
from quantsaas.runtime import Runtime
from test_scale_out import REDIS

Link = RedisPublisher | RedisSubscriber


def scrape(built: Runtime, link: Link) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    assert built.link is link
    text = Metrics(built, StreamCounters(), SimpleNamespace()).render().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith("quantsaas_redis_")
    }


def ingest_runtime(instrument: Instrument, url: str) -> tuple[Runtime, RedisPublisher]:
    built = runtime.build(
        Settings(web_dist=None), "ingest", feeds=[ScriptedFeed([instrument])], bus_url=url
    )
    assert isinstance(built.link, RedisPublisher)
    return built, built.link


def kind(value: str) -> tuple[tuple[str, str], ...]:
    return (("kind", value),)


async def until(condition: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def running(*jobs: Link) -> AsyncIterator[None]:
    tasks = [asyncio.create_task(job.run()) for job in jobs]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def test_a_publisher_that_never_connected_reports_its_queue() -> None:
    instrument = make_instrument()
    built, publisher = ingest_runtime(instrument, "redis://127.0.0.1:1/0")
    engine = engine_of(built)
    engine.on_event(snapshot(instrument, [(10_000, 5)], [(10_010, 3)]))
    engine.on_event(delta(instrument, [(9_990, 1)], [], 2))
    values = scrape(built, publisher)
    assert values[("quantsaas_redis_connected", ())] == 0
    assert values[("quantsaas_redis_reconnects_total", ())] == 0
    assert values[("quantsaas_redis_pending_messages", ())] == 2
    assert values[("quantsaas_redis_entries_published_total", kind("message"))] == 0
    assert values[("quantsaas_redis_dropped_messages_total", ())] == 0
    assert not any(name.endswith("relayed_total") for name, _ in values)


@pytest.mark.skipif(not Path(REDIS).exists(), reason="redis-server missing")
@pytest.mark.asyncio
async def test_publisher_and_subscriber_metrics_follow_the_stream_and_an_outage(
    tmp_path: Path,
) -> None:
    instrument = make_instrument()
    redis = RedisServer(tmp_path)
    redis.start()
    try:
        ingesting, publisher = ingest_runtime(instrument, redis.url)
        ingest = engine_of(ingesting)
        # no periodic snapshots in the test: only the one sent on each (re)connect
        publisher.snapshot_s = 3600
        api = runtime.build(Settings(web_dist=None), "api", bus_url=redis.url)
        subscriber = api.link
        assert isinstance(subscriber, RedisSubscriber)
        async with running(subscriber):
            await until(lambda: subscriber.last_id is not None, "the subscriber to start")
            before = scrape(api, subscriber)
            assert before[("quantsaas_redis_connected", ())] == 1
            assert before[("quantsaas_redis_entries_relayed_total", kind("message"))] == 0
            assert ("quantsaas_redis_relay_lag_seconds", ()) not in before  # nothing read yet
            ingest.on_event(snapshot(instrument, [(10_000, 5)], [(10_010, 3)]))
            for sequence in range(2, 5):
                ingest.on_event(delta(instrument, [(9_990, sequence)], [], sequence))
            assert publisher.pending and len(publisher.pending) == 4
            async with running(publisher):
                # 4 messages, then the snapshot queued when the publisher connected
                await until(lambda: subscriber.read_entries == 5, "5 entries relayed")
                sent = scrape(ingesting, publisher)
                read = scrape(api, subscriber)
                assert sent[("quantsaas_redis_connected", ())] == 1
                assert sent[("quantsaas_redis_entries_published_total", kind("message"))] == 4
                assert sent[("quantsaas_redis_entries_published_total", kind("snapshot"))] == 1
                assert sent[("quantsaas_redis_pending_messages", ())] == 0
                assert read[("quantsaas_redis_entries_relayed_total", kind("message"))] == 4
                assert read[("quantsaas_redis_entries_relayed_total", kind("snapshot"))] == 1
                assert 0 <= read[("quantsaas_redis_relay_lag_seconds", ())] < 5
                assert 0 <= read[("quantsaas_redis_last_read_age_seconds", ())] < 5
                assert read[("quantsaas_redis_reconnects_total", ())] == 0

                redis.stop()
                ingest.on_event(delta(instrument, [(9_990, 9)], [], 5))  # wakes the publisher
                await until(lambda: not publisher.connected, "the publisher to see the outage")
                await until(lambda: not subscriber.connected, "the subscriber to see it")
                down = scrape(ingesting, publisher)
                assert down[("quantsaas_redis_connected", ())] == 0
                assert down[("quantsaas_redis_pending_messages", ())] == 1
                assert scrape(api, subscriber)[("quantsaas_redis_connected", ())] == 0

                redis.start()  # the same port, empty
                await until(lambda: publisher.connected and subscriber.connected, "reconnects")
                await until(lambda: not publisher.pending, "the queued message to be written")
                again = scrape(ingesting, publisher)
                assert again[("quantsaas_redis_reconnects_total", ())] == 1
                assert again[("quantsaas_redis_entries_published_total", kind("message"))] == 5
                assert again[("quantsaas_redis_entries_published_total", kind("snapshot"))] == 2
                relayed = scrape(api, subscriber)
                assert relayed[("quantsaas_redis_connected", ())] == 1
                assert relayed[("quantsaas_redis_reconnects_total", ())] == 1
    finally:
        redis.stop()
