"""The fake Coinbase: Exchange and Advanced Trade protocol details and faults."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from quantsaas.errors import ConfigError
from quantsaas.fakes.coinbase import CoinbaseFakeConfig, FakeCoinbase
from quantsaas.fakes.server import BIG_BYTES

SAMPLES = Path(__file__).parents[1] / "feeds" / "samples"


async def recv_json(ws, timeout: float = 5.0) -> dict:  # type: ignore[no-untyped-def,type-arg]
    result: dict = orjson.loads(await asyncio.wait_for(ws.recv(), timeout))  # type: ignore[type-arg]
    return result


@pytest.mark.asyncio
async def test_exchange_refuses_unauthenticated_level2_and_serves_level2_batch() -> None:
    fake = FakeCoinbase(CoinbaseFakeConfig(symbols=("BTC-USD",), rate=200))
    await fake.start()
    try:
        async with connect(f"ws://127.0.0.1:{fake.port}") as ws:
            await ws.send('{"type":"subscribe","product_ids":["BTC-USD"],"channels":["level2"]}')
            error = await recv_json(ws)
            assert error["type"] == "error" and "authentication" in error["reason"]
            await ws.send(
                '{"type":"subscribe","product_ids":["BTC-USD"],'
                '"channels":["level2_batch","matches","heartbeat"]}'
            )
            ack = await recv_json(ws)
            assert ack["type"] == "subscriptions"
            snapshot = await recv_json(ws)
            assert snapshot["type"] == "snapshot" and snapshot["product_id"] == "BTC-USD"
            assert float(snapshot["bids"][0][0]) < float(snapshot["asks"][0][0])
            assert (await recv_json(ws))["type"] == "last_match"
            sequences: list[int] = []
            kinds: set[str] = set()
            while len(sequences) < 5 or "l2update" not in kinds:
                frame = await recv_json(ws)
                kinds.add(frame["type"])
                if "sequence" in frame:
                    sequences.append(frame["sequence"])
            assert sequences == sorted(sequences)
    finally:
        await fake.stop()


@pytest.mark.asyncio
async def test_advanced_sequence_num_is_per_connection_and_gap_skips_it() -> None:
    fake = FakeCoinbase(CoinbaseFakeConfig(api="advanced", symbols=("BTC-USD",), rate=200))
    await fake.start()
    try:
        async with connect(f"ws://127.0.0.1:{fake.port}") as ws:
            for channel in ("heartbeats", "level2", "market_trades"):
                await ws.send(
                    orjson.dumps(
                        {"type": "subscribe", "product_ids": ["BTC-USD"], "channel": channel}
                    ).decode()
                )
            frames = [await recv_json(ws) for _ in range(15)]
            numbers = [frame["sequence_num"] for frame in frames]
            assert numbers == list(range(15))
            assert frames[0]["channel"] == "subscriptions"
            snapshot = next(f for f in frames if f["channel"] == "l2_data")
            assert snapshot["events"][0]["type"] == "snapshot"
            assert {u["side"] for u in snapshot["events"][0]["updates"]} == {"bid", "offer"}
            fake.inject("gap")
            later = [14] + [(await recv_json(ws))["sequence_num"] for _ in range(40)]
            steps = [b - a for a, b in zip(later, later[1:], strict=False)]
            assert sorted(set(steps)) == [1, 3] and steps.count(3) == 1
    finally:
        await fake.stop()


@pytest.mark.asyncio
async def test_replay_is_verbatim_for_any_product_and_stale_snapshot_does_not_apply() -> None:
    source = SAMPLES / "coinbase_exchange_level2.jsonl"
    fake = FakeCoinbase(CoinbaseFakeConfig(replay=source, replay_per_s=5000))
    await fake.start()
    try:
        with pytest.raises(ValueError, match="does not apply"):
            fake.inject("stale-snapshot")
        assert list(fake.listings) == ["SKL-GBP"]  # from the file: not a simulated product
        async with connect(f"ws://127.0.0.1:{fake.port}", max_size=None) as ws:
            await ws.send('{"type":"subscribe","product_ids":["SKL-GBP"],"channels":["ticker"]}')
            expected = [line.decode() for line in source.read_bytes().splitlines()]
            # nothing of the fake's own: the recording's ack comes first, then its frames
            assert [await asyncio.wait_for(ws.recv(), 5) for _ in expected] == expected
            await ws.send('{"type":"subscribe","product_ids":["SKL-GBP"],"channels":["ticker"]}')
            with pytest.raises(TimeoutError):  # the file is sent once per connection
                await asyncio.wait_for(ws.recv(), 0.3)
    finally:
        await fake.stop()


def test_a_product_the_simulator_lacks_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="replay a recording"):
        FakeCoinbase(CoinbaseFakeConfig(symbols=("SKL-GBP",)))


@pytest.mark.asyncio
async def test_exchange_channels_listing_and_a_big_snapshot_that_fires_on_its_own() -> None:
    fake = FakeCoinbase(CoinbaseFakeConfig(symbols=("BTC-USD",), rate=200))
    await fake.start()
    url = f"ws://127.0.0.1:{fake.port}"
    signed = (
        '{"type":"subscribe","product_ids":["BTC-USD"],"channels":["level2"],'
        '"signature":"s","key":"k","passphrase":"p","timestamp":"1"}'
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{fake.port}") as http:
            (product,) = (await http.get("/products")).json()
            assert (product["id"], product["quote_increment"]) == ("BTC-USD", "0.01")
            currencies = {c["id"] for c in (await http.get("/currencies")).json()}
            assert currencies == {"BTC", "USD"}
        async with connect(url, max_size=None) as ws:
            await ws.send('{"type":"subscribe","product_ids":["BTC-USD"],"channels":["full"]}')
            assert "authentication" in (await recv_json(ws))["reason"]
            await ws.send('{"type":"subscribe","product_ids":["BTC-USD"],"channels":["nope"]}')
            assert "not a valid channel" in (await recv_json(ws))["reason"]
            await ws.send(signed)  # authenticated level2 is served
            assert (await recv_json(ws))["type"] == "subscriptions"
            first = await asyncio.wait_for(ws.recv(), 5)
            assert orjson.loads(first)["type"] == "snapshot" and len(first) < BIG_BYTES
            fake.inject("big-snapshot")
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    await ws.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
        async with connect(url, max_size=None) as ws:  # the client's reconnect
            await ws.send(signed)
            await recv_json(ws)
            assert len(await asyncio.wait_for(ws.recv(), 5)) > BIG_BYTES
    finally:
        await fake.stop()
