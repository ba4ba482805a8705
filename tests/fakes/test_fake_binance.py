"""The fake Binance: REST depth on the stream's update-id counter, control messages, limits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import orjson
import pytest
import pytest_asyncio
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from quantsaas.fakes.binance import BinanceFakeConfig, FakeBinance

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
        assert (await reply(ws))["code"] == 2
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
        async with connect(f"ws://127.0.0.1:{fake.port}/stream?streams=x") as ws:
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
