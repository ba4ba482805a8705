"""Kraken end to end: fake Kraken + simulator -> Engine -> real HTTP API.

A wrong checksum is a resync counted in /health, and no book that failed its checksum is ever
published: after every published Kraken book event the engine's book must hash to the checksum
the fake sent in that frame (read by a raw-frame tap).
Maintenance shows Kraken down in /health while the simulator stays live.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import httpx
import orjson
import pytest
import pytest_asyncio

from helpers import engine_of, make_runtime, on_events, serve_in_loop
from quantsaas.api.app import create_app
from quantsaas.config import Settings
from quantsaas.engine import Engine
from quantsaas.fakes.kraken import FakeKraken, KrakenFakeConfig
from quantsaas.feeds.base import FeedState
from quantsaas.feeds.kraken.book import checksum
from quantsaas.feeds.kraken.feed import KrakenFeed
from quantsaas.feeds.kraken.parse import kraken_instruments
from quantsaas.feeds.simulator import SimConfig, SimulatorFeed, select_instruments
from quantsaas.feeds.transport import Backoff, TransportConfig
from quantsaas.model import BookDelta, BookSnapshot, MarketEvent, format_fixed

CONFIG = TransportConfig(stall_s=2.0, backoff=Backoff(initial_s=0.05, cap_s=0.3))


async def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


@dataclass
class World:
    fake: FakeKraken
    feed: KrakenFeed
    engine: Engine
    http: httpx.AsyncClient
    wrong: list[MarketEvent]


@pytest_asyncio.fixture
async def world() -> AsyncIterator[World]:
    fake = FakeKraken(KrakenFakeConfig(rate=200, interval_s=0.05, maintenance_s=1.0))
    port = await fake.start()
    feed = KrakenFeed(
        kraken_instruments(["BTC/USD", "ETH/USD"]), url=f"ws://127.0.0.1:{port}/v2", config=CONFIG
    )
    sim = SimulatorFeed(select_instruments(["BTC/USD"]), SimConfig(events_per_second=50))
    built = make_runtime([feed, sim], Settings())
    engine = engine_of(built)
    wrong: list[MarketEvent] = []
    sent: dict[str, int] = {}

    def tap(venue: str, raw: str | bytes, ts_recv: int) -> None:
        frame = orjson.loads(raw)
        if isinstance(frame, dict) and frame.get("channel") == "book":
            for entry in frame["data"]:
                sent[entry["symbol"]] = entry["checksum"]

    feed.taps.append(tap)

    def check(event: MarketEvent) -> None:
        # every published Kraken book must hash to the checksum the venue sent with it
        if event.instrument.venue == "kraken" and isinstance(event, BookSnapshot | BookDelta):
            book = engine.books[event.instrument.key]
            bids = [_text(p, s) for p, s in book.bids(10)]
            asks = [_text(p, s) for p, s in book.asks(10)]
            if checksum(asks, bids) != sent[event.instrument.native_symbol]:
                wrong.append(event)

    on_events(built, check)
    app = create_app(built)
    try:
        async with (
            serve_in_loop(app) as address,
            httpx.AsyncClient(base_url=f"http://{address}", timeout=5) as http,
        ):
            world = World(fake, feed, engine, http, wrong)
            await wait_until(lambda: feed.stats.state is FeedState.LIVE, 10, "kraken live")
            yield world
    finally:
        await fake.stop()


def _text(price: int, size: int) -> tuple[str, str]:
    """The fake writes sim prices at 2 decimals and sizes at 8; the instrument's scale is 10."""
    return format_fixed(price // 10**8, 2), format_fixed(size // 10**2, 8)


def kraken_health(body: dict[str, object]) -> dict[str, object]:
    feeds = body["feeds"]
    assert isinstance(feeds, list)
    (kraken,) = [f for f in feeds if f["venue"] == "kraken"]
    assert isinstance(kraken, dict)
    return kraken


@pytest.mark.asyncio
async def test_wrong_checksum_resyncs_without_publishing_a_bad_book(world: World) -> None:
    await asyncio.sleep(0.3)
    world.fake.inject("checksum")
    await wait_until(lambda: world.feed.checksum_failures == 1, 5, "mismatch")
    await wait_until(lambda: world.feed.stats.state is FeedState.LIVE, 5, "resynced")
    kraken = kraken_health((await world.http.get("/health")).json())
    assert kraken["resyncs"] == 1 and kraken["live"] is True
    assert kraken["reconnects"] == 0  # one pair resubscribed, the connection kept
    assert "checksum" in str(kraken["last_error"])
    world.fake.inject("gap")  # a lost update: the next checksum catches the drift
    await wait_until(lambda: world.feed.checksum_failures == 2, 5, "lost update caught")
    await wait_until(lambda: world.feed.stats.state is FeedState.LIVE, 5, "resynced again")
    await asyncio.sleep(0.3)
    assert world.wrong == [] and world.feed.stats.reconnects == 0
    assert world.feed.precisions["BTC/USD"].qty_precision == 8  # from the instrument channel
    response = await world.http.get("/api/v1/book/kraken/BTC-USD", params={"depth": 10})
    assert response.status_code == 200 and len(response.json()["bids"]) == 10


@pytest.mark.asyncio
async def test_maintenance_shows_kraken_down_and_the_simulator_unaffected(world: World) -> None:
    world.fake.inject("maintenance")
    await wait_until(lambda: world.feed.stats.state is FeedState.DISCONNECTED, 5, "maintenance")
    body = (await world.http.get("/health")).json()
    assert body["status"] == "degraded"
    kraken = kraken_health(body)
    assert kraken["live"] is False and "maintenance" in str(kraken["last_error"])
    (sim,) = [f for f in body["feeds"] if f["venue"] == "sim"]
    assert sim["live"] is True
    book = await world.http.get("/api/v1/book/kraken/BTC-USD")
    assert book.status_code == 503  # stale books are not served during maintenance
    await wait_until(lambda: world.feed.stats.state is FeedState.LIVE, 5, "back online")
    assert (await world.http.get("/health")).json()["status"] == "ok"
