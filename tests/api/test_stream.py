import asyncio
import contextlib
import json
import time
from typing import Any

import pytest
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from conftest import Service
from helpers import (
    ScriptedFeed,
    StalledClient,
    delta,
    make_instrument,
    make_runtime,
    serve_in_loop,
    snapshot,
    trade,
)
from quantsaas.api.app import create_app
from quantsaas.config import Settings


async def receive(ws: ClientConnection, timeout: float = 2.0) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), timeout))
    return message


async def request(ws: ClientConnection, **body: Any) -> dict[str, Any]:
    await ws.send(json.dumps(body))
    return await receive(ws)


async def close_code(ws: ClientConnection) -> int | None:
    """Read until the server closes the connection; the close code it sent."""
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            await receive(ws)
    return None if closed.value.rcvd is None else closed.value.rcvd.code


async def connect(service: Service) -> ClientConnection:
    ws = await websockets.connect(service.ws)
    info = await receive(ws)
    assert info["type"] == "info" and info["symbols"] == ["BTC/USD", "ETH/USD"]
    return ws


def seed_books(service: Service) -> None:
    service.feed.push(snapshot(service.btc, [(10_000, 5)], [(10_010, 3)]))
    service.feed.push(snapshot(service.eth, [(2_000, 1)], [(2_001, 1)]))


@pytest.mark.asyncio
async def test_book_subscription_starts_with_a_snapshot_then_gap_free_deltas(
    service: Service,
) -> None:
    seed_books(service)
    service.feed.push(delta(service.btc, [(10_000, 6)], [], 2))
    await asyncio.sleep(0.05)
    async with await connect(service) as ws:
        reply = await request(ws, op="subscribe", channels=["book"], symbols=["BTC/USD"], id=7)
        assert reply == {"type": "subscribed", "streams": [["book", "test", "BTC/USD"]], "id": 7}
        first = await receive(ws)
        assert first["type"] == "snapshot" and first["seq"] == 2
        assert first["data"]["bids"] == [["100.00", "0.00000006"]]
        for sequence in range(3, 8):
            service.feed.push(delta(service.btc, [(9_990 - sequence, 1)], [], sequence))
        deltas = [await receive(ws) for _ in range(5)]
    assert [m["seq"] for m in deltas] == [3, 4, 5, 6, 7]
    for message in deltas:
        assert message["type"] == "delta" and message["channel"] == "book"
        assert message["venue"] == "test" and message["symbol"] == "BTC/USD"
        assert isinstance(message["ts_event"], int) and isinstance(message["ts_recv"], int)
        assert isinstance(message["timestamp"], int) and message["datetime"].endswith("Z")


@pytest.mark.asyncio
async def test_trades_flow_and_stop_after_unsubscribe(service: Service) -> None:
    seed_books(service)
    async with await connect(service) as ws:
        await request(ws, op="subscribe", channels=["trades"], symbols=["BTC-USD", "ETH/USD"])
        service.feed.push(trade(service.btc, 10_005, 1, "a", 1_000))
        service.feed.push(trade(service.eth, 2_000, 1, "b", 1_001))
        got = [await receive(ws), await receive(ws)]
        assert [(m["symbol"], m["seq"], m["data"]["id"]) for m in got] == [
            ("BTC/USD", 1, "a"),
            ("ETH/USD", 1, "b"),
        ]
        reply = await request(ws, op="unsubscribe", channels=["trades"], symbols=["BTC/USD"])
        assert reply["type"] == "unsubscribed"
        service.feed.push(trade(service.btc, 10_005, 1, "c", 1_002))
        service.feed.push(trade(service.eth, 2_000, 1, "d", 1_003))
        after = await receive(ws)
    assert (after["symbol"], after["seq"], after["data"]["id"]) == ("ETH/USD", 2, "d")


@pytest.mark.asyncio
async def test_ping_is_answered_with_server_time(service: Service) -> None:
    async with await connect(service) as ws:
        pong = await request(ws, op="ping", id="x")
    assert pong["type"] == "pong" and pong["id"] == "x" and pong["server_time"] > 0


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("{not json", "bad_json"),
        ('"just a string"', "bad_request"),
        ('{"op": "dance"}', "unknown_op"),
        ('{"op": "subscribe", "channels": ["trades"], "symbols": ["DOGE/USD"]}', "unknown_symbol"),
        ('{"op": "subscribe", "channels": ["orders"], "symbols": ["BTC/USD"]}', "unknown_channel"),
        ('{"op": "subscribe", "channels": [], "symbols": ["BTC/USD"]}', "bad_request"),
        ('{"op": "subscribe", "channels": ["trades"], "symbols": [1]}', "bad_request"),
        ('{"op": "subscribe", "channels": ["trades"]}', "bad_request"),
    ],
)
@pytest.mark.asyncio
async def test_bad_requests_get_an_error_and_the_connection_stays_open(
    service: Service, raw: str, code: str
) -> None:
    async with await connect(service) as ws:
        await ws.send(raw)
        error = await receive(ws)
        assert error["type"] == "error" and error["code"] == code and error["message"]
        pong = await request(ws, op="ping")
    assert pong["type"] == "pong"


@pytest.mark.asyncio
async def test_binary_frames_are_refused_politely(service: Service) -> None:
    async with await connect(service) as ws:
        await ws.send(b"\x00\x01")
        error = await receive(ws)
        assert error["code"] == "bad_request"
        assert (await request(ws, op="ping"))["type"] == "pong"


@pytest.mark.asyncio
async def test_a_flood_of_garbage_closes_with_policy_violation(service: Service) -> None:
    async with await connect(service) as ws:
        for _ in range(5):
            await ws.send("garbage")
        code = await close_code(ws)
    assert code == 1008


@pytest.mark.asyncio
async def test_too_many_messages_per_second_closes_with_policy_violation(service: Service) -> None:
    async with await connect(service) as ws:
        for _ in range(60):
            await ws.send(json.dumps({"op": "ping"}))
        code = await close_code(ws)
    assert code == 1008


@pytest.mark.asyncio
async def test_an_oversized_frame_closes_with_1009(service: Service) -> None:
    async with await connect(service) as ws:
        await ws.send("x" * (128 * 1024))
        code = await close_code(ws)
    assert code == 1009


@pytest.mark.asyncio
async def test_a_slow_client_is_cut_off_without_delaying_a_fast_one(service: Service) -> None:
    subscribe = {"op": "subscribe", "channels": ["trades"], "symbols": ["BTC/USD"]}
    stalled = await asyncio.to_thread(StalledClient, service.address)
    stalled.send(json.dumps(subscribe))
    async with await connect(service) as fast:
        await request(fast, **subscribe)
        padding = "p" * 4000  # big messages fill the stalled client's socket buffers quickly
        received: list[int] = []
        delays: list[float] = []
        for batch in range(40):
            pushed = time.monotonic()
            for n in range(50):
                service.feed.push(trade(service.btc, 10_000, 1, f"{batch}-{n}-{padding}", n))
            for _ in range(50):
                message = await receive(fast, timeout=5)
                received.append(message["seq"])
                delays.append(time.monotonic() - pushed)
            await asyncio.sleep(0.02)
    assert received == list(range(1, 2001)), "the fast client lost or reordered messages"
    assert max(delays) < 1.0, "the fast client was held up"
    close_code = await asyncio.to_thread(stalled.drain)
    assert close_code == 4008
    seqs = [m["seq"] for m in map(json.loads, stalled.messages) if m["type"] == "trade"]
    assert seqs == sorted(seqs) and len(seqs) < 2000


@pytest.mark.asyncio
async def test_the_stream_works_on_an_asgi_server_without_the_direct_write_path() -> None:
    # any ASGI server: without the FanoutProtocol sink each message goes through ASGI send
    btc = make_instrument()
    feed = ScriptedFeed([btc])
    app = create_app(make_runtime([feed], Settings(ws_queue_size=64)))
    feed.push(snapshot(btc, [(10_000, 5)], [(10_010, 3)]))
    async with (
        serve_in_loop(app, ws="websockets-sansio") as address,
        websockets.connect(f"ws://{address}/ws") as ws,
    ):
        assert (await receive(ws))["type"] == "info"
        await request(ws, op="subscribe", channels=["book", "trades"], symbols=["BTC/USD"])
        first = await receive(ws)
        assert first["type"] == "snapshot" and first["seq"] == 1
        for sequence in range(2, 5):
            feed.push(delta(btc, [(9_990 - sequence, 1)], [], sequence))
        feed.push(trade(btc, 10_005, 1, "t", 1_000))
        got = [await receive(ws) for _ in range(4)]
    assert [(m["type"], m["seq"]) for m in got] == [
        ("delta", 2), ("delta", 3), ("delta", 4), ("trade", 1)
    ]  # fmt: skip


@pytest.mark.asyncio
async def test_handshakes_are_accepted_while_broadcasting(service: Service) -> None:
    seed_books(service)
    subscribe = {"op": "subscribe", "channels": ["trades"], "symbols": ["BTC/USD"]}
    listeners = [await connect(service) for _ in range(10)]
    for ws in listeners:
        await request(ws, **subscribe)
    stop = asyncio.Event()

    async def publish() -> None:
        n = 0
        while not stop.is_set():
            for _ in range(10):  # ~1,000 trades/s, 10,000 messages/s to the listeners
                n += 1
                service.feed.push(trade(service.btc, 10_000, 1, str(n), n))
            await asyncio.sleep(0.01)

    async def listen(ws: ClientConnection) -> int:
        count = 0
        with contextlib.suppress(ConnectionClosed, TimeoutError):
            while not stop.is_set():
                await asyncio.wait_for(ws.recv(), 2)
                count += 1
        return count

    publisher = asyncio.create_task(publish())
    readers = [asyncio.create_task(listen(ws)) for ws in listeners]
    try:
        await asyncio.sleep(0.2)
        for _ in range(10):  # each newcomer gets in and is served while the stream runs
            async with asyncio.timeout(10):
                ws = await connect(service)
                reply = await request(ws, **subscribe)
                assert reply["type"] == "subscribed"
                await ws.close()
    finally:
        stop.set()
        counts = await asyncio.gather(*readers)
        publisher.cancel()
        for ws in listeners:
            await ws.close()
    assert min(counts) > 100, "the listeners were not being served meanwhile"


@pytest.mark.asyncio
async def test_a_gap_on_a_book_stream_is_followed_by_a_fresh_snapshot_then_deltas(
    service: Service,
) -> None:
    seed_books(service)
    await asyncio.sleep(0.05)
    topic = ("book", "test", "BTC/USD")
    async with await connect(service) as ws:
        await request(ws, op="subscribe", channels=["book"], symbols=["BTC/USD"])
        assert (await receive(ws))["seq"] == 1  # the snapshot
        service.feed.push(delta(service.btc, [(9_999, 1)], [], 2))
        assert (await receive(ws))["seq"] == 2
        # six messages of the stream never reach this process (as when a relay skips ahead)
        service.app.state.runtime.bus.advance(topic, 8)
        service.feed.push(delta(service.btc, [(9_993, 1)], [], 3))
        gap, fresh = await receive(ws), await receive(ws)
        for sequence in (4, 5):
            service.feed.push(delta(service.btc, [(9_990 + sequence, 1)], [], sequence))
        after = [await receive(ws), await receive(ws)]
    assert gap == {
        "type": "gap", "channel": "book", "venue": "test", "symbol": "BTC/USD", "missed": 6
    }  # fmt: skip
    assert (fresh["type"], fresh["seq"]) == ("snapshot", 9)
    assert ["99.93", "0.00000001"] in fresh["data"]["bids"]  # the book as of seq 9
    assert [(m["type"], m["seq"]) for m in after] == [("delta", 10), ("delta", 11)]
