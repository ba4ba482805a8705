"""The fake Deribit through the real DeribitFeed and Engine: chain over REST, heartbeats and
test_request answered, a change_id gap resyncs one book by resubscribing, raw refused."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import orjson
import pytest
from websockets.asyncio.client import connect

from helpers import engine_of, make_runtime, on_events
from quantsaas.config import Settings
from quantsaas.fakes.deribit import DeribitFakeConfig, FakeDeribit
from quantsaas.feeds.base import FeedState
from quantsaas.feeds.deribit.feed import DeribitFeed, option_chain
from quantsaas.feeds.transport import Backoff, TransportConfig
from quantsaas.model import MarketEvent, OptionTicker


async def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


@pytest.mark.asyncio
async def test_feed_against_the_fake() -> None:
    fake = FakeDeribit(DeribitFakeConfig(currencies=("BTC",), heartbeat_s=0.3, interval_s=0.05))
    port = await fake.start()
    task = None
    try:
        settings = Settings(
            deribit_rest_url=f"http://127.0.0.1:{port}",
            deribit_currencies=("BTC",),
            deribit_max_options=4,
        )
        chain = await asyncio.to_thread(option_chain, settings)
        assert len(chain) == 4 and all(i.option is not None for i in chain)
        config = TransportConfig(stall_s=2.0, backoff=Backoff(initial_s=0.05, cap_s=0.3))
        feed = DeribitFeed(chain, url=f"ws://127.0.0.1:{port}/ws/api/v2", config=config)
        built = make_runtime([feed])
        engine = engine_of(built)
        seen: list[MarketEvent] = []
        on_events(built, seen.append)
        task = asyncio.create_task(engine.run())
        await wait_until(lambda: feed.stats.state is FeedState.LIVE, 5, "live")
        await wait_until(lambda: fake.test_replies >= 2, 5, "test_request answered")
        assert feed.stats.reconnects == 0 and feed.live_chain["BTC"] == len(
            fake.instruments_json("BTC")
        )
        assert any(isinstance(e, OptionTicker) for e in seen)
        assert all(engine.books[i.key].valid for i in chain)
        fake.inject("gap")
        await wait_until(lambda: feed.stats.gaps == 1, 5, "gap detected")
        assert "prev_change_id" in (feed.stats.last_error or "") and feed.stats.resyncs == 1
        await wait_until(
            lambda: (
                feed.stats.state is FeedState.LIVE and all(engine.books[i.key].valid for i in chain)
            ),
            5,
            "resubscribed",
        )
        assert feed.stats.reconnects == 0  # one book resubscribed, not the connection
        fake.paused = True
        await asyncio.sleep(0.2)
        for inst in chain:  # the service's books equal the fake's own
            bids, asks = fake.books[inst.native_symbol]
            scale = 10 ** (inst.price_scale - 4)
            size = 10 ** (inst.size_scale - 1)
            book = engine.books[inst.key]
            assert book.bids() == [
                (p * scale, s * size) for p, s in sorted(bids.items(), reverse=True)
            ]
            assert book.asks() == [(p * scale, s * size) for p, s in sorted(asks.items())]
    finally:
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await fake.stop()


@pytest.mark.asyncio
async def test_raw_needs_auth_and_unanswered_test_requests_close() -> None:
    fake = FakeDeribit(DeribitFakeConfig(currencies=("BTC",), heartbeat_s=0.2))
    await fake.start()
    name = next(iter(fake.options))
    try:
        async with connect(f"ws://127.0.0.1:{fake.port}") as ws:
            await ws.send(
                orjson.dumps(
                    {
                        "jsonrpc": "2.0",
                        "id": 3,
                        "method": "public/subscribe",
                        "params": {"channels": [f"book.{name}.raw"]},
                    }
                )
            )
            reply = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
            assert reply["id"] == 3 and reply["error"]["code"] == 13778 and "usDiff" in reply
            await ws.send(
                '{"jsonrpc":"2.0","id":4,"method":"public/set_heartbeat","params":{"interval":10}}'
            )
            assert orjson.loads(await asyncio.wait_for(ws.recv(), 5))["result"] == "ok"
            frames = []
            with pytest.raises(Exception):  # noqa: B017  closed: the test_request went unanswered
                while True:
                    frames.append(orjson.loads(await asyncio.wait_for(ws.recv(), 5)))
            assert frames and frames[0]["params"]["type"] == "test_request"
    finally:
        await fake.stop()


@pytest.mark.asyncio
async def test_replay_lists_the_files_options_and_sends_it_after_the_subscribe() -> None:
    recorded = Path(__file__).parents[1] / "feeds" / "samples" / "deribit_book.jsonl"
    fake = FakeDeribit(DeribitFakeConfig(replay=recorded, replay_per_s=5000))
    await fake.start()
    try:
        assert list(fake.options) == ["BTC-24SEP21-8000-P"]  # the one the file has data of
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{fake.port}") as http:
            listed = (await http.get("/api/v2/public/get_instruments")).json()["result"]
            assert {row["instrument_name"] for row in listed} == set(fake.options)
            row = next(r for r in listed if r["instrument_name"] == "BTC-24SEP21-8000-P")
            assert (row["strike"], row["option_type"]) == (8000, "put")
            currencies = (await http.get("/api/v2/public/get_currencies")).json()["result"]
            assert [c["currency"] for c in currencies] == ["BTC"]
        async with connect(f"ws://127.0.0.1:{fake.port}/ws/api/v2") as ws:
            channel = "book.BTC-24SEP21-8000-P.100ms"
            await ws.send(
                orjson.dumps(
                    {
                        "jsonrpc": "2.0",
                        "id": 7,
                        "method": "public/subscribe",
                        "params": {"channels": [channel]},
                    }
                )
            )
            reply = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
            assert reply["id"] == 7 and reply["result"] == [channel]
            expected = [line.decode() for line in recorded.read_bytes().splitlines()]
            assert [await asyncio.wait_for(ws.recv(), 5) for _ in expected] == expected
    finally:
        await fake.stop()
