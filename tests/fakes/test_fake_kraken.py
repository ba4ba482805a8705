"""The fake Kraken v2: control messages, checksums computed from its own book, faults."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from quantsaas.errors import ChecksumMismatch
from quantsaas.fakes.kraken import FakeKraken, KrakenFakeConfig
from quantsaas.fakes.server import BIG_BYTES
from quantsaas.feeds.kraken import parse
from quantsaas.feeds.kraken.book import KrakenBook

INSTRUMENTS = {i.native_symbol: i for i in parse.kraken_instruments(["BTC/USD", "ETH/USD"])}


async def recv(ws: ClientConnection) -> Any:
    return parse.decode(await asyncio.wait_for(ws.recv(), 5))


@pytest.mark.asyncio
async def test_protocol_and_every_checksum_verifies() -> None:
    fake = FakeKraken(KrakenFakeConfig(rate=300, interval_s=0.02))
    await fake.start()
    try:
        async with connect(f"ws://127.0.0.1:{fake.port}/v2") as ws:
            status = await recv(ws)
            assert status["channel"] == "status" and status["data"][0]["system"] == "online"
            assert status["data"][0]["connection_id"] > 2**63  # unsigned 64-bit
            await ws.send('{"method":"ping","req_id":101}')
            assert (await recv(ws))["method"] == "pong"
            await ws.send(
                '{"method":"subscribe","params":{"channel":"book","symbol":["BTC/USD","ETH/USD",'
                '"NOPE/USD"],"depth":25},"req_id":7}'
            )
            acks, books = [], {s: KrakenBook(i, 25) for s, i in INSTRUMENTS.items()}
            verified = 0
            while verified < 60:
                frame = await recv(ws)
                if "method" in frame:
                    acks.append(frame)
                    continue
                for item in parse.parse_message(frame, INSTRUMENTS, 0):
                    assert isinstance(item, parse.BookMessage)
                    book = books[item.symbol]
                    if item.snapshot:
                        book.on_snapshot(item.update, 0)
                    else:
                        book.on_update(item.update, 0)  # raises on a mismatch
                    verified += 1
            assert [a["success"] for a in acks] == [True, True, False]
            assert {a["req_id"] for a in acks} == {7}
            assert acks[2]["error"] == "Currency pair not supported"
            assert all("time_in" in a and "time_out" in a for a in acks)
            fake.inject("checksum")
            with pytest.raises(ChecksumMismatch):
                for _ in range(200):
                    for item in parse.parse_message(await recv(ws), INSTRUMENTS, 0):
                        assert isinstance(item, parse.BookMessage)
                        books[item.symbol].on_update(item.update, 0)
    finally:
        await fake.stop()


@pytest.mark.asyncio
async def test_numbers_are_fixed_precision_and_maintenance_is_announced() -> None:
    fake = FakeKraken(KrakenFakeConfig(symbols=("BTC/USD",), maintenance_s=0.2))
    await fake.start()
    try:
        async with connect(f"ws://127.0.0.1:{fake.port}") as ws:
            await recv(ws)
            await ws.send('{"method":"subscribe","params":{"channel":"book","symbol":["BTC/USD"]}}')
            await recv(ws)
            snapshot = (await asyncio.wait_for(ws.recv(), 5)).__str__()
            assert '"qty":' in snapshot and all(
                len(qty.split(",")[0].split("}")[0].split(".")[1]) == 8
                for qty in snapshot.split('"qty":')[1:]
            )
            fake.inject("maintenance")
            systems: list[str] = []
            while systems[-1:] != ["online"]:
                frame = await recv(ws)
                if frame.get("channel") == "status":
                    systems.append(frame["data"][0]["system"])
            assert systems == ["maintenance", "online"]
    finally:
        await fake.stop()


@pytest.mark.asyncio
async def test_replay_sends_the_recorded_frames_verbatim_after_the_subscribe() -> None:
    recorded = Path(__file__).parents[1] / "feeds" / "samples" / "kraken_v2_book.jsonl"
    fake = FakeKraken(KrakenFakeConfig(replay=recorded))
    await fake.start()
    try:
        assert list(fake.listings) == ["ETH/USD"]  # the file's pair only
        async with connect(f"ws://127.0.0.1:{fake.port}") as ws:
            with pytest.raises(TimeoutError):  # no status or ack of the fake's own
                await asyncio.wait_for(ws.recv(), 0.3)
            await ws.send('{"method":"ping","req_id":1}')
            assert (await recv(ws))["method"] == "pong"
            await ws.send('{"method":"subscribe","params":{"channel":"book","symbol":["ETH/USD"]}}')
            got = [await asyncio.wait_for(ws.recv(), 5) for _ in range(3)]
            assert [line.encode() if isinstance(line, str) else line for line in got] == [
                line for line in recorded.read_bytes().splitlines() if line.strip()
            ]
    finally:
        await fake.stop()


@pytest.mark.asyncio
async def test_rest_pairs_and_a_big_snapshot_that_fires_on_its_own() -> None:
    fake = FakeKraken(KrakenFakeConfig(symbols=("BTC/USD",)))
    await fake.start()
    subscribe = '{"method":"subscribe","params":{"channel":"book","symbol":["BTC/USD"]}}'
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{fake.port}") as http:
            pairs = (await http.get("/0/public/AssetPairs")).json()["result"]
            assert pairs["BTCUSD"]["wsname"] == "BTC/USD" and pairs["BTCUSD"]["pair_decimals"] == 2
            assets = (await http.get("/0/public/Assets")).json()["result"]
            assert set(assets) == {"BTC", "USD"}
        async with connect(f"ws://127.0.0.1:{fake.port}", max_size=None) as ws:
            await recv(ws)
            await ws.send(subscribe)
            await recv(ws)
            assert len(await asyncio.wait_for(ws.recv(), 5)) < BIG_BYTES
            fake.inject("big-snapshot")
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    await ws.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
        async with connect(f"ws://127.0.0.1:{fake.port}", max_size=None) as ws:
            await recv(ws)
            await ws.send(subscribe)
            await recv(ws)
            assert len(await asyncio.wait_for(ws.recv(), 5)) > BIG_BYTES
    finally:
        await fake.stop()
