"""Reconnects: the server is killed mid-stream and started again; the client's streams resume
by themselves with a fresh book, and the gap is reported where it happened."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from client_server import Server, serving
from quantsaas.client import AsyncClient, Gap, ServerGone
from quantsaas.client._config import Backoff, StreamConfig
from quantsaas.client._connection import Connection, Request
from quantsaas.client._streams import QueueWatcher
from quantsaas.client.decode import Decoder
from quantsaas.model import BookSnapshot, Trade


@pytest.mark.asyncio
async def test_kill_and_restart_resumes_with_a_fresh_book_and_reports_the_gap(
    tmp_path: Path,
) -> None:
    with serving(tmp_path, "--rate", "200") as server:
        async with AsyncClient(server.base, stall_s=30, give_up_s=60) as client:
            books: list[Any] = []
            trades: list[Any] = []

            async def follow(stream: Any, into: list[Any]) -> None:
                async for item in stream:
                    into.append(item)

            jobs = [
                asyncio.create_task(follow(client.book("BTC/USD", venue="sim"), books)),
                asyncio.create_task(follow(client.trades("BTC/USD", venue="sim"), trades)),
            ]
            await asyncio.sleep(2)
            before = len(books), len(trades)
            await asyncio.to_thread(server.kill)
            await asyncio.sleep(1.5)  # the client retries against a closed port meanwhile
            await asyncio.to_thread(server.start)
            deadline = time.monotonic() + 60
            while not all(_resumed(stream) for stream in (books, trades)):
                assert time.monotonic() < deadline, "the streams did not resume"
                await asyncio.sleep(0.1)

            assert before[0] > 10 and before[1] > 10
            assert client.stats.reconnects >= 1
            for stream in (books, trades):
                gap = stream[_index_of_gap(stream)]
                assert gap.reason == "reconnect" and gap.channel in ("book", "trades")
                assert len([item for item in stream if isinstance(item, Gap)]) == 1
            assert all(isinstance(b, BookSnapshot) for b in books if not isinstance(b, Gap))
            assert all(isinstance(t, Trade) for t in trades if not isinstance(t, Gap))
            # the fresh book is the restarted server's: compare at the same nonce
            compared = 0
            for _ in range(50):
                server_book = await client.fetch_book("BTC/USD", "sim", depth=1000)
                await asyncio.sleep(0.3)
                local = [b for b in books[_index_of_gap(books) :] if isinstance(b, BookSnapshot)]
                same = [b for b in local if b.sequence == server_book.sequence]
                if same:
                    assert (same[0].bids, same[0].asks) == (server_book.bids, server_book.asks)
                    compared += 1
                if compared == 3:
                    break
            assert compared == 3
            for job in jobs:
                job.cancel()


def _resumed(items: list[Any]) -> bool:
    gaps = [i for i, item in enumerate(items) if isinstance(item, Gap)]
    return bool(gaps) and len(items) - gaps[0] > 20


def _index_of_gap(items: list[Any]) -> int:
    return next(i for i, item in enumerate(items) if isinstance(item, Gap))


@pytest.mark.asyncio
async def test_a_server_that_stays_gone_ends_the_streams_with_server_gone(
    tmp_path: Path,
) -> None:
    with serving(tmp_path, "--rate", "50") as server:
        async with AsyncClient(server.base, give_up_s=2.0) as client:
            items: list[Any] = []

            async def follow() -> None:
                async for item in client.trades("BTC/USD", venue="sim"):
                    items.append(item)

            job = asyncio.create_task(follow())
            await asyncio.sleep(1)
            await asyncio.to_thread(server.kill)
            started = time.monotonic()
            with pytest.raises(ServerGone):
                await asyncio.wait_for(job, 30)
            assert 1.5 < time.monotonic() - started < 15
            assert items


@pytest.mark.asyncio
async def test_nothing_listening_fails_fast_with_server_gone(tmp_path: Path) -> None:
    unused = Server(tmp_path, ())
    async with AsyncClient(unused.base) as client:
        started = time.monotonic()
        with pytest.raises(ServerGone):
            async for _ in client.trades("BTC/USD"):
                pass
        assert time.monotonic() - started < 10


def test_backoff_is_capped_and_jittered() -> None:
    backoff = Backoff(initial_s=0.25, cap_s=10.0, jitter=0.5)
    assert backoff.delay(0, lambda: 0.0) == 0.25
    assert backoff.delay(3, lambda: 0.0) == 2.0
    assert backoff.delay(50, lambda: 0.0) == 10.0
    assert backoff.delay(50, lambda: 1.0) == 5.0
    assert len({backoff.delay(4) for _ in range(20)}) > 1


def test_the_servers_status_messages_say_which_source_is_down() -> None:
    async def refresh() -> None:
        return None

    connection = Connection("ws://127.0.0.1:9/ws", {}, Decoder(), StreamConfig(), refresh)
    down = {"type": "status", "source": "binance", "state": "down", "reason": "connect failed"}
    connection._handle(orjson.dumps(down))
    assert connection.down == {"binance": "connect failed"}
    connection._handle(orjson.dumps({**down, "state": "live", "reason": None}))
    assert connection.down == {} and connection.streams.stats.malformed == 0


@pytest.mark.asyncio
async def test_a_stream_of_an_instrument_not_listed_yet_reads_the_list_again() -> None:
    calls: list[int] = []

    async def refresh() -> None:
        calls.append(1)

    connection = Connection("ws://127.0.0.1:9/ws", {}, Decoder(), StreamConfig(), refresh)
    watcher = QueueWatcher(10)
    ready = asyncio.get_running_loop().create_future()
    connection._requests[1] = Request(["trades"], ["BTC/USD"], None, watcher, ready)
    connection._wire[7] = (1, False)
    streams = [["trades", "newvenue", "BTC/USD"], ["greeks", "newvenue", "BTC/USD"]]
    connection._handle(orjson.dumps({"type": "subscribed", "streams": streams, "id": 7}))
    connection._handle(orjson.dumps({"type": "subscribed", "streams": streams, "id": 7}))
    await asyncio.sleep(0)
    assert ready.done() and calls == [1]  # one refresh at a time
    assert watcher in connection.streams.by_key[("trades", "newvenue", "BTC/USD")].watchers
