"""The api role's relay on a real redis-server: the catalog, and a process far behind the stream."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from redis.asyncio import Redis

from helpers import REDIS_SERVER, RedisServer, ScriptedFeed, make_instrument
from quantsaas import runtime
from quantsaas.bus import Envelope, Gap, Topic
from quantsaas.bus_redis import (
    MAX_RELAY_LAG_S,
    STREAM,
    RedisPublisher,
    RedisSubscriber,
    RelayBus,
    catalog_from_json,
    catalog_json,
)
from quantsaas.config import Settings
from quantsaas.feeds.sim_instruments import default_instruments
from quantsaas.feeds.sim_options import OptionChainSim
from quantsaas.model import Instrument

TOPIC: Topic = ("book", "test", "BTC/USD")
needs_redis = pytest.mark.skipif(not Path(REDIS_SERVER).exists(), reason="redis-server missing")


def entry(seq: int) -> dict[str, str | int]:
    return {
        "k": "m",
        "c": TOPIC[0],
        "v": TOPIC[1],
        "s": TOPIC[2],
        "q": seq,
        "w": f'{{"seq":{seq}}}',
    }


async def until(condition: object, what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def test_the_catalog_carries_every_instrument_exactly() -> None:
    spot = list(default_instruments())
    options: list[Instrument] = list(
        OptionChainSim(spot[0], 0.6, 1_800_000_000 * 10**9).instruments
    )
    instruments, channels = catalog_from_json(catalog_json([*spot, *options], ["book", "trades"]))
    assert list(instruments.values()) == [*spot, *options]
    assert channels == ["book", "trades"]


@needs_redis
@pytest.mark.asyncio
async def test_an_api_process_reads_the_ingest_catalog(tmp_path: Path) -> None:
    redis = RedisServer(tmp_path)
    redis.start()
    try:
        btc = make_instrument()
        ingest = runtime.build(
            Settings(web_dist=None), "ingest", feeds=[ScriptedFeed([btc])], bus_url=redis.url
        )
        api = runtime.build(Settings(web_dist=None), "api", bus_url=redis.url)
        assert isinstance(ingest.link, RedisPublisher) and isinstance(api.link, RedisSubscriber)
        tasks = [asyncio.create_task(ingest.link.run()), asyncio.create_task(api.link.run())]
        try:
            await until(lambda: api.read_model.instruments(), "the catalog")
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        assert dict(api.read_model.instruments()) == dict(ingest.read_model.instruments())
        assert set(api.read_model.channels()) == set(ingest.read_model.channels())
        assert api.read_model.book(btc.key) is None  # books live in the ingest process
    finally:
        redis.stop()


@needs_redis
@pytest.mark.asyncio
async def test_an_api_process_far_behind_skips_ahead_with_gaps_and_is_not_ready(
    tmp_path: Path,
) -> None:
    redis = RedisServer(tmp_path)
    redis.start()
    client = Redis.from_url(redis.url)
    try:
        old_ms = int(time.time() * 1000) - 60_000  # a minute behind
        for seq in (1, 2, 3):
            await client.xadd(STREAM, entry(seq), id=f"{old_ms}-{seq}")  # type: ignore[arg-type]
        bus = RelayBus()
        subscription = bus.subscribe([TOPIC])
        link = RedisSubscriber(redis.url, bus)
        link.last_id = b"0-0"  # reads from the oldest entry: far behind
        task = asyncio.create_task(link.run())
        try:
            await until(lambda: link.fell_behind == 1, "the relay to skip ahead")
            assert link.relay_lag_s is not None and link.relay_lag_s > MAX_RELAY_LAG_S
            assert link.ready_checks()["relay_current"] is False
            await client.xadd(STREAM, entry(10))  # type: ignore[arg-type]
            await until(lambda: bus.last_seq(TOPIC) == 10, "a current entry")
            assert link.ready_checks()["relay_current"] is True
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        received = []
        while (item := subscription.get_nowait()) is not None:
            received.append(item)
        seqs = [item.seq for item in received if isinstance(item, Envelope)]
        assert seqs == [1, 2, 3, 10] and Gap(TOPIC, 6) in received
        assert received.index(Gap(TOPIC, 6)) == 3  # told before the message after the jump
    finally:
        await client.aclose()
        redis.stop()
