"""The fake Binance: REST depth on the stream's update-id counter, control messages, limits."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import pytest_asyncio
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from quantsaas.config import Settings
from quantsaas.engine import Engine
from quantsaas.fakes.binance import BinanceFakeConfig, FakeBinance
from quantsaas.feeds.binance.feed import BinanceFeed
from quantsaas.feeds.registry import build_feeds

SAMPLES = Path(__file__).parents[1] / "feeds" / "samples"


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeBinance]:
    server = FakeBinance(BinanceFakeConfig(symbols=("BTCUSDT",), rate=200, lifetime_s=30))
    await server.start()
    yield server
    await server.stop()


async def recv_json(ws, timeout: float = 5.0) -> dict:  # type: ignore[no-untyped-def,type-arg]
    result: dict = orjson.loads(await asyncio.wait_for(ws.recv(), timeout))  # type: ignore[type-arg]
    return result


@pytest.mark.asyncio
async def test_rest_snapshot_shares_the_diff_streams_update_ids(fake: FakeBinance) -> None:
    url = f"ws://127.0.0.1:{fake.port}/stream?streams=btcusdt@depth@100ms"
    async with connect(url) as ws, httpx.AsyncClient() as http:
        first = await recv_json(ws)
        assert first["stream"] == "btcusdt@depth@100ms"
        response = await http.get(
            f"http://127.0.0.1:{fake.port}/api/v3/depth", params={"symbol": "BTCUSDT"}
        )
        snapshot = response.json()
        assert response.headers["content-type"] == "application/json"
        assert snapshot["lastUpdateId"] >= first["data"]["u"]
        follow = await recv_json(ws)
        while follow["data"]["u"] <= snapshot["lastUpdateId"]:  # sent before the snapshot
            follow = await recv_json(ws)
        assert follow["data"]["U"] == snapshot["lastUpdateId"] + 1
        best_bid, best_ask = snapshot["bids"][0], snapshot["asks"][0]
        assert float(best_bid[0]) < float(best_ask[0])
        assert len(best_bid[0].split(".")[1]) == 8  # fixed 8 decimals like the venue
        bad = await http.get(f"http://127.0.0.1:{fake.port}/api/v3/depth?symbol=NOPE")
        assert bad.status_code == 400


async def reply(ws) -> dict:  # type: ignore[no-untyped-def,type-arg]
    """The next control reply, skipping market data frames."""
    while True:
        frame = await recv_json(ws)
        if "e" not in frame:
            return frame


@pytest.mark.asyncio
async def test_control_messages_and_raw_streams(fake: FakeBinance) -> None:
    async with connect(f"ws://127.0.0.1:{fake.port}/ws") as ws:
        await ws.send('{"method":"SUBSCRIBE","params":["btcusdt@trade"],"id":1}')
        assert await reply(ws) == {"result": None, "id": 1}
        await ws.send('{"method":"LIST_SUBSCRIPTIONS","id":2}')
        assert await reply(ws) == {"result": ["btcusdt@trade"], "id": 2}
        await ws.send('{"method":"GET_PROPERTY","params":["combined"],"id":3}')
        assert await reply(ws) == {"result": False, "id": 3}
        await ws.send('{"method":"NOPE","id":4}')
        assert (await reply(ws))["error"]["code"] == 2
        await ws.send('{"method":"SUBSCRIBE","params":["btcusdt@bogus"],"id":5}')
        refused = await reply(ws)
        assert refused == {"error": {"code": 2, "msg": "Invalid request: invalid stream"}, "id": 5}
        frame = await recv_json(ws)
        while "e" not in frame:
            frame = await recv_json(ws)
        assert frame["e"] == "trade" and frame["s"] == "BTCUSDT"


@pytest.mark.asyncio
async def test_more_than_five_messages_per_second_closes_1008(fake: FakeBinance) -> None:
    async with connect(f"ws://127.0.0.1:{fake.port}/ws") as ws:
        with pytest.raises(ConnectionClosed) as closed:
            for ident in range(10):
                await ws.send(f'{{"method":"LIST_SUBSCRIPTIONS","id":{ident}}}')
            while True:
                await asyncio.wait_for(ws.recv(), 5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


@pytest.mark.asyncio
async def test_unknown_path_is_refused(fake: FakeBinance) -> None:
    with pytest.raises(InvalidStatus):
        async with connect(f"ws://127.0.0.1:{fake.port}/nope"):
            pass


@pytest.mark.asyncio
async def test_connection_lifetime_ends_with_a_close_frame() -> None:
    fake = FakeBinance(BinanceFakeConfig(symbols=("BTCUSDT",), lifetime_s=0.3))
    await fake.start()
    try:
        async with connect(f"ws://127.0.0.1:{fake.port}/ws") as ws:
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 5)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
    finally:
        await fake.stop()


@pytest.mark.asyncio
async def test_replay_sends_the_file_byte_for_byte() -> None:
    source = SAMPLES / "binance_depth.jsonl"
    snapshot = SAMPLES / "binance_depth_snapshot.jsonl"
    fake = FakeBinance(BinanceFakeConfig(replay=source, snapshot=snapshot, replay_per_s=5000))
    await fake.start()
    try:
        url = f"ws://127.0.0.1:{fake.port}/stream?streams=nknusdt@depth@100ms"
        async with connect(url) as ws:
            expected = [line.decode() for line in source.read_bytes().splitlines()]
            got = [await asyncio.wait_for(ws.recv(), 5) for _ in expected]
            assert got == expected
        async with httpx.AsyncClient() as http:
            body = await http.get(f"http://127.0.0.1:{fake.port}/api/v3/depth?symbol=NKNUSDT")
            assert body.content == snapshot.read_bytes()
    finally:
        await fake.stop()


@pytest.mark.asyncio
async def test_unknown_fault_is_rejected(fake: FakeBinance) -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        fake.inject("explode")


@pytest.mark.asyncio
async def test_rest_listing_ping_and_time(fake: FakeBinance) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{fake.port}") as http:
        assert (await http.get("/api/v3/ping")).json() == {}
        server_time = (await http.get("/api/v3/time")).json()["serverTime"]
        assert abs(server_time - time.time() * 1000) < 5_000
        info = (await http.get("/api/v3/exchangeInfo")).json()
        (row,) = info["symbols"]
        assert (row["symbol"], row["baseAsset"], row["quoteAsset"]) == ("BTCUSDT", "BTC", "USDT")
        filters = {f["filterType"]: f for f in row["filters"]}
        assert filters["PRICE_FILTER"]["tickSize"] == "0.01"  # the simulator's BTC tick
        one = await http.get("/api/v3/exchangeInfo", params={"symbols": '["BTCUSDT"]'})
        assert [r["symbol"] for r in one.json()["symbols"]] == ["BTCUSDT"]
        bad = await http.get("/api/v3/exchangeInfo", params={"symbol": "NOPE"})
        assert bad.status_code == 400 and bad.json()["code"] == -1121
        assert (await http.get("/api/v3/depth?symbol=BTCUSDT&limit=x")).status_code == 400


STREAMS: dict[str, Callable[[Any], bool]] = {
    "btcusdt@aggTrade": lambda d: d["e"] == "aggTrade" and d["f"] == d["l"] and d["a"] > 0,
    "btcusdt@depth5": lambda d: len(d["bids"]) == len(d["asks"]) == 5 and "lastUpdateId" in d,
    "btcusdt@depth10@100ms": lambda d: len(d["bids"]) == 10,
    "btcusdt@depth20": lambda d: len(d["asks"]) == 20,
    "btcusdt@depth": lambda d: d["e"] == "depthUpdate" and d["U"] <= d["u"],
    "btcusdt@kline_1s": lambda d: d["e"] == "kline" and d["k"]["i"] == "1s" and d["k"]["n"] > 0,
    "btcusdt@kline_1M": lambda d: d["k"]["T"] - d["k"]["t"] == 2_592_000_000 - 1,
    "btcusdt@miniTicker": lambda d: d["e"] == "24hrMiniTicker" and float(d["v"]) > 0,
    "btcusdt@ticker": lambda d: d["e"] == "24hrTicker" and float(d["b"]) < float(d["a"]),
    "btcusdt@ticker_1h": lambda d: d["e"] == "1hTicker" and d["n"] > 0,
    "btcusdt@avgPrice": lambda d: d["e"] == "avgPrice" and float(d["w"]) > 0,
    "!miniTicker@arr": lambda d: [t["s"] for t in d] == ["BTCUSDT"],
}


@pytest.mark.asyncio
async def test_every_accepted_stream_sends_its_data(fake: FakeBinance) -> None:
    names = "/".join(STREAMS)
    async with connect(f"ws://127.0.0.1:{fake.port}/stream?streams={names}") as ws:
        pending = set(STREAMS)
        while pending:
            frame = await recv_json(ws)
            stream = frame["stream"]
            assert STREAMS[stream](frame["data"]), frame
            pending.discard(stream)
        await ws.send('{"method":"SUBSCRIBE","params":["xrpxrp@trade"],"id":9}')
        while (frame := await recv_json(ws)).get("id") != 9:
            pass
        assert frame == {"result": None, "id": 9}  # well-formed, unknown symbol: silent


@pytest.mark.asyncio
async def test_stale_snapshot_fires_on_its_own(fake: FakeBinance) -> None:
    url = f"ws://127.0.0.1:{fake.port}/stream?streams=btcusdt@depth@100ms"
    async with connect(url) as ws, httpx.AsyncClient() as http:
        await recv_json(ws)
        fake.inject("stale-snapshot")
        with pytest.raises(ConnectionClosed) as closed:  # the fake forces the resnapshot
            while True:
                await recv_json(ws)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
        depth = f"http://127.0.0.1:{fake.port}/api/v3/depth?symbol=BTCUSDT"
        stale = (await http.get(depth)).json()["lastUpdateId"]
        fresh = (await http.get(depth)).json()["lastUpdateId"]
        assert stale < fake.update_id["BTCUSDT"] - 9_000 and fresh >= stale + 10_000


@pytest.mark.asyncio
async def test_replay_lists_any_product_and_starts_on_subscribe() -> None:
    source = SAMPLES / "binance_depth.jsonl"
    fake = FakeBinance(BinanceFakeConfig(symbols=("SKLGBP",), replay=source, replay_per_s=5000))
    await fake.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{fake.port}") as http:
            info = (await http.get("/api/v3/exchangeInfo")).json()
            assert [s["symbol"] for s in info["symbols"]] == ["SKLGBP", "NKNUSDT"]
        async with connect(f"ws://127.0.0.1:{fake.port}/ws") as ws:
            with pytest.raises(TimeoutError):  # nothing before a subscription
                await asyncio.wait_for(ws.recv(), 0.3)
            await ws.send('{"method":"SUBSCRIBE","params":["nknusdt@depth@100ms"],"id":1}')
            assert await recv_json(ws) == {"result": None, "id": 1}
            expected = [line.decode() for line in source.read_bytes().splitlines()]
            assert [await asyncio.wait_for(ws.recv(), 5) for _ in expected] == expected
    finally:
        await fake.stop()


@pytest.mark.asyncio
async def test_our_feed_rides_out_snapshot_faults_that_fire_on_their_own() -> None:
    fake = FakeBinance(BinanceFakeConfig(symbols=("BTCUSDT",), rate=200))
    await fake.start()
    base = f"127.0.0.1:{fake.port}"
    settings = Settings(
        feeds=("binance",),
        binance_ws_url=f"ws://{base}",
        binance_rest_url=f"http://{base}",
        binance_symbols=("BTC/USDT",),
        feed_backoff_initial_s=0.05,
        feed_backoff_cap_s=0.2,
    )
    engine = Engine(build_feeds(settings), lambda topic, event: None)  # books only
    feed = engine.feeds[0]
    assert isinstance(feed, BinanceFeed)
    sync = feed.syncs["BTCUSDT"]
    book = engine.books[feed.instruments[0].key]
    task = asyncio.create_task(engine.run())
    try:
        await wait_until(lambda: book.valid and fake.snapshots_served == 1, "a first book")
        fake.inject("stale-snapshot")  # nothing else forces a reconnect
        await wait_until(lambda: sync.stale_snapshots == 1, "the stale snapshot refused")
        await wait_until(lambda: book.valid and fake.snapshots_served >= 3, "a fresh book")
        served = fake.snapshots_served
        fake.inject("big-snapshot")
        await wait_until(lambda: fake.snapshots_served > served and book.valid, "big snapshot")
        assert len(book.asks()) > 10_000  # the padding reached the book
        assert feed.stats.reconnects == 2
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await fake.stop()


async def wait_until(condition: Callable[[], bool], what: str, timeout: float = 10) -> None:
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)
