"""Binance end to end: fake exchange -> BinanceFeed -> Engine -> real HTTP API, with faults.

For every fault: it is detected (counters, last error), the book is rebuilt from a fresh snapshot,
every published book was uncrossed, and once the fake pauses the service's book equals the fake's
true book at the same update id (a spliced or gapped book would differ), and /api/market_data
shows the fake's prices. A Coinbase feed pointed at a closed port shows the service keeps serving.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import httpx
import pytest
import pytest_asyncio

from helpers import engine_of, make_runtime, on_events, serve_in_loop
from quantsaas.api.app import create_app
from quantsaas.config import Settings
from quantsaas.engine import Engine
from quantsaas.fakes.binance import BinanceFakeConfig, FakeBinance
from quantsaas.feeds.base import BooksStale, EventSink, FeedState
from quantsaas.feeds.binance.feed import BinanceFeed
from quantsaas.feeds.coinbase.feed import CoinbaseFeed
from quantsaas.feeds.instruments import binance_instruments, coinbase_instruments
from quantsaas.feeds.transport import Backoff, TransportConfig
from quantsaas.model import BookDelta, BookSnapshot, Level, MarketEvent

BACKOFF_CAP_S = 0.4
CONFIG = TransportConfig(stall_s=1.0, backoff=Backoff(initial_s=0.05, cap_s=BACKOFF_CAP_S))
SYMBOLS = ("BTCUSDT", "ETHUSDT")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> float:
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)
    return time.monotonic() - start


@dataclass
class World:
    fake: FakeBinance
    feed: BinanceFeed
    engine: Engine
    http: httpx.AsyncClient
    crossed: list[MarketEvent]
    stale: list[tuple[tuple[str, ...], str]]


@pytest_asyncio.fixture
async def world() -> AsyncIterator[World]:
    fake = FakeBinance(BinanceFakeConfig(symbols=SYMBOLS, rate=100, interval_s=0.05))
    port = await fake.start()
    feed = BinanceFeed(
        binance_instruments(SYMBOLS),
        ws_url=f"ws://127.0.0.1:{port}",
        rest_url=f"http://127.0.0.1:{port}",
        config=CONFIG,
        retry_s=0.1,
    )
    down = CoinbaseFeed(
        coinbase_instruments(["BTC-USD"]), url=f"ws://127.0.0.1:{closed_port()}", config=CONFIG
    )
    built = make_runtime([feed, down], Settings())
    engine = engine_of(built)
    crossed: list[MarketEvent] = []

    def check(event: MarketEvent) -> None:
        if isinstance(event, BookSnapshot | BookDelta):
            book = engine.books[event.instrument.key]
            bid, ask = book.best_bid(), book.best_ask()
            if not book.valid or (bid and ask and bid[0] >= ask[0]):
                crossed.append(event)

    on_events(built, check)
    stale: list[tuple[tuple[str, ...], str]] = []
    run = feed.run

    async def run_and_watch(sink: EventSink) -> None:
        # the sink the engine gives a venue feed, watched: stale books stop being served
        def watched(event: MarketEvent | BooksStale) -> None:
            if isinstance(event, BooksStale):
                natives = tuple(inst.native_symbol for inst in event.instruments)
                stale.append((natives, event.reason))
            sink(event)

        await run(watched)

    feed.run = run_and_watch  # type: ignore[method-assign]
    app = create_app(built)
    try:
        async with (
            serve_in_loop(app) as address,
            httpx.AsyncClient(base_url=f"http://{address}", timeout=5) as http,
        ):
            world = World(fake, feed, engine, http, crossed, stale)
            await wait_until(lambda: synced(world), 10, "first sync")
            yield world
    finally:
        await fake.stop()


def synced(world: World) -> bool:
    return (
        all(world.engine.books[inst.key].valid for inst in world.feed.instruments)
        and world.feed.stats.state is FeedState.LIVE
    )


def venue_levels(levels: tuple[Level, ...]) -> list[Level]:
    """The fake's simulator books are at 2 price decimals; the venue instrument uses 8."""
    return [(price * 10**6, size) for price, size in levels]


async def assert_matches_fake(world: World) -> None:
    """Pause the fake, let the service catch up, compare whole books and the REST API."""
    world.fake.paused = True
    try:
        for inst in world.feed.instruments:
            native = inst.native_symbol
            book = world.engine.books[inst.key]
            await wait_until(
                lambda: book.valid and book.sequence == world.fake.update_id[native],  # noqa: B023
                5,
                f"{native} to catch up",
            )
            bids, asks = world.fake.market.book(native)
            assert book.bids() == venue_levels(bids)
            assert book.asks() == venue_levels(asks)
            response = await world.http.get(
                "/api/market_data", params={"venue": "binance", "symbols": inst.symbol}
            )
            (data,) = response.json()["data"]
            assert data["bid"] == world.fake.market.text(native, bids[0][0])
            assert data["ask"] == world.fake.market.text(native, asks[0][0])
            assert data["book_valid"] is True
    finally:
        world.fake.paused = False
    assert world.crossed == []


@pytest.mark.asyncio
async def test_first_sync_and_health_with_one_venue_down(world: World) -> None:
    await assert_matches_fake(world)
    await wait_until(lambda: world.engine.feeds[1].stats.last_error is not None, 5, "error")
    response = await world.http.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    binance, coinbase = body["feeds"]
    assert binance["live"] is True and binance["last_error"] is None
    assert binance["endpoint"].startswith("ws://127.0.0.1")
    assert coinbase["live"] is False and coinbase["state"] in ("disconnected", "starting")
    assert "cannot connect" in coinbase["last_error"]


@pytest.mark.asyncio
async def test_gap_is_detected_and_the_book_rebuilt(world: World) -> None:
    world.fake.inject("gap")
    await wait_until(lambda: world.feed.stats.gaps == 1, 5, "gap detection")
    assert "jump" in (world.feed.stats.last_error or "")
    ((symbol,), reason) = world.stale[-1]
    assert symbol in SYMBOLS and "jump" in reason
    await assert_matches_fake(world)
    assert world.feed.stats.reconnects == 0  # a gap needs a new snapshot, not a new socket


@pytest.mark.asyncio
async def test_stale_snapshot_is_refused_and_fetched_again(world: World) -> None:
    world.fake.inject("stale-snapshot")
    world.fake.inject("gap")
    await wait_until(lambda: "older than" in (world.feed.stats.last_error or ""), 5, "stale")
    await assert_matches_fake(world)


@pytest.mark.asyncio
async def test_big_snapshot_over_2_mib_is_accepted(world: World) -> None:
    world.fake.inject("big-snapshot")
    world.fake.inject("gap")
    btc = world.engine.books[world.feed.instruments[0].key]
    await wait_until(lambda: btc.level_count()[1] > 50_000, 10, "big snapshot")
    world.fake.inject("gap")  # the next, normal snapshot replaces the padded book
    await wait_until(lambda: btc.level_count()[1] < 1000, 10, "normal snapshot")
    await assert_matches_fake(world)


@pytest.mark.asyncio
async def test_malformed_frame_is_counted_and_the_feed_goes_on(world: World) -> None:
    world.fake.inject("malformed")
    await wait_until(lambda: world.feed.stats.malformed == 1, 5, "malformed count")
    assert world.feed.stats.reconnects == 0
    await assert_matches_fake(world)
    health = (await world.http.get("/health")).json()["feeds"][0]
    assert health["malformed"] == 1 and "invalid JSON" in health["last_error"]


@pytest.mark.asyncio
@pytest.mark.parametrize("fault", ["drop", "shutdown", "silent"])
async def test_connection_faults_reconnect_within_the_backoff_bound(
    world: World, fault: str
) -> None:
    world.fake.inject(fault)
    detect_s = CONFIG.stall_s + 1.0 if fault == "silent" else 2.0
    await wait_until(lambda: world.feed.stats.reconnects >= 1, detect_s, f"{fault} detected")
    assert world.stale[0][0] == SYMBOLS  # every book flagged stale when the link went
    elapsed = await wait_until(lambda: synced(world), BACKOFF_CAP_S + 2.0, "resync")
    assert elapsed < BACKOFF_CAP_S + 2.0
    await assert_matches_fake(world)
    if fault == "silent":
        assert "stalled" in (world.feed.stats.last_error or "")
    if fault == "shutdown":
        assert "serverShutdown" in (world.feed.stats.last_error or "")


@pytest.mark.asyncio
async def test_a_silent_venue_is_alive_but_its_books_are_marked_stale() -> None:
    """`silent`: the fake sends no market data but answers our probes. The connection is alive
    (probe answers, never counted as data), the books' data age passes the venue's bound:
    /health shows the feed not live with its stale books, the REST book says `stale`."""
    fake = FakeBinance(BinanceFakeConfig(symbols=SYMBOLS, rate=100, interval_s=0.05))
    port = await fake.start()
    config = TransportConfig(stall_s=60.0, liveness_s=1.5, probe_s=0.3)
    feed = BinanceFeed(
        binance_instruments(SYMBOLS),
        ws_url=f"ws://127.0.0.1:{port}",
        rest_url=f"http://127.0.0.1:{port}",
        config=config,
        retry_s=0.1,
    )
    feed.stats.stale_after_s = 0.5
    built = make_runtime([feed], Settings())
    engine = engine_of(built)
    app = create_app(built)
    try:
        async with (
            serve_in_loop(app) as address,
            httpx.AsyncClient(base_url=f"http://{address}", timeout=5) as http,
        ):
            book = engine.books[feed.instruments[0].key]
            await wait_until(lambda: book.valid and feed.stats.state is FeedState.LIVE, 10, "sync")
            fresh = (await http.get("/api/v1/book/binance/BTC-USDT")).json()
            assert fresh["stale"] is False and 0 <= fresh["age_ms"] < 500
            fake.inject("silent")
            await wait_until(lambda: len(feed.stats.stale_books()) == 2, 5, "stale books")
            frames = feed.stats.messages
            await asyncio.sleep(2.0)  # past liveness_s: probe answers keep the link alive
            assert feed.stats.reconnects == 0 and feed.stats.messages > frames
            assert feed.stats.last_message_age_s() < 1.0 < feed.stats.last_data_age_s()  # type: ignore[operator]
            health = await http.get("/health")
            assert health.status_code == 503
            (binance,) = health.json()["feeds"]
            assert binance["live"] is False and binance["stale_books"] == ["BTC/USDT", "ETH/USDT"]
            assert health.json()["books_stale"] == 2
            stale = (await http.get("/api/v1/book/binance/BTC-USDT")).json()
            assert stale["stale"] is True and stale["age_ms"] > 500
            (row,) = (await http.get("/api/market_data", params={"symbols": "BTC/USDT"})).json()[
                "data"
            ]
            assert row["stale"] is True and row["age_ms"] > 500
    finally:
        await fake.stop()
