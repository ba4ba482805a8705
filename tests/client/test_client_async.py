"""AsyncClient against a real `quantsaas serve` (the simulator) on loopback: several streams on
one connection without a gap, exact books equal to the server's, typed analytics, clean ends."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from client_server import Server, serving
from quantsaas.client import AsyncClient, Candle, Gap, Greeks, Ofi, StreamStalled, UnknownSymbol
from quantsaas.model import BookSnapshot, Ticker, Trade

pytestmark = pytest.mark.asyncio


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with serving(tmp_path_factory.mktemp("client-async"), "--rate", "400") as running:
        yield running


@pytest_asyncio.fixture
async def client(server: Server) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(server.base, stall_s=20) as opened:
        yield opened


async def collect(stream: AsyncIterator[Any], seconds: float, into: list[Any]) -> None:
    deadline = time.monotonic() + seconds
    async for item in stream:
        into.append(item)
        if time.monotonic() > deadline:
            break


def ws_connections(server: Server) -> float:
    metrics = httpx.get(f"{server.base}/metrics").text
    line = next(x for x in metrics.splitlines() if x.startswith("quantsaas_ws_clients "))
    return float(line.split()[1])


async def test_many_streams_on_one_connection_are_gap_free(
    server: Server, client: AsyncClient
) -> None:
    trades: list[Any] = []
    books: list[Any] = []
    tickers: list[Any] = []
    candles: list[Any] = []
    ofi: list[Any] = []
    eth: list[Any] = []
    jobs = [
        collect(client.trades("BTC/USD", venue="sim"), 8, trades),
        collect(client.book("BTC/USD", venue="sim", depth=10), 8, books),
        collect(client.ticker("BTC/USD"), 8, tickers),
        collect(client.candles("BTC/USD", interval="1s"), 8, candles),
        collect(client.ofi("BTC/USD", venue="sim"), 8, ofi),
        collect(client.trades(["ETH/USD"], venue="sim"), 8, eth),
    ]
    watching = asyncio.gather(*jobs)
    await asyncio.sleep(3)
    assert ws_connections(server) == 1  # six iterators, one WebSocket
    await watching
    for items in (trades, books, tickers, candles, ofi, eth):
        assert items and not [i for i in items if isinstance(i, Gap)]
    assert client.stats.gaps == 0 and client.stats.malformed == 0 and client.stats.resyncs == 0
    # the simulator numbers its trades per symbol: every one arrived, in order
    for stream in (trades, eth):
        ids = [int(t.trade_id) for t in stream]
        assert ids == list(range(ids[0], ids[0] + len(ids))) and len(ids) > 100
    assert all(isinstance(t, Trade) and t.instrument.symbol == "BTC/USD" for t in trades)
    assert all(isinstance(b, BookSnapshot) and len(b.bids) == 10 for b in books)
    assert [b.sequence for b in books] == sorted(b.sequence for b in books)
    assert all(isinstance(t, Ticker) for t in tickers)
    assert all(isinstance(c, Candle) and c.interval == "1s" for c in candles)
    assert all(isinstance(o, Ofi) and len(o.ofi) == 5 for o in ofi)
    await asyncio.sleep(0.5)
    assert ws_connections(server) == 1  # the connection stays, its streams were unsubscribed
    assert not any(stream.watchers for stream in client._connection.streams.by_key.values())  # type: ignore[union-attr]


async def test_the_local_book_equals_the_servers_book(client: AsyncClient) -> None:
    seen: dict[int, BookSnapshot] = {}
    book_stream = client.book("BTC/USD", venue="sim")

    async def follow() -> None:
        async for book in book_stream:
            assert isinstance(book, BookSnapshot)
            seen[book.sequence] = book

    following = asyncio.create_task(follow())
    compared = 0
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline and compared < 8:
            server_book = await client.fetch_book("BTC/USD", "sim", depth=1000)
            for _ in range(100):  # the stream reaches the same nonce a moment later
                if max(seen, default=0) >= server_book.sequence:
                    break
                await asyncio.sleep(0.02)
            local = seen.get(server_book.sequence)
            if local is not None:  # (a state the conflating iterator skipped is not compared)
                assert local.bids == server_book.bids and local.asks == server_book.asks
                compared += 1
            await asyncio.sleep(2)
    finally:
        following.cancel()
    assert compared >= 5
    assert client.stats.gaps == 0


async def test_greeks_and_vpin_are_typed(client: AsyncClient) -> None:
    async for greeks in client.greeks("BTC/USD", venue="sim"):
        assert isinstance(greeks, Greeks)
        assert greeks.instrument.option is not None
        assert greeks.instrument.option.underlying == "BTC/USD"
        assert greeks.ours is not None and greeks.ticker.mark_price > 0
        break


async def test_unknown_symbols_are_refused(client: AsyncClient) -> None:
    with pytest.raises(UnknownSymbol):
        async for _ in client.trades("DOGE/USD", venue="sim"):
            pass
    with pytest.raises(UnknownSymbol):
        await client.fetch_book("DOGE/USD", "sim")


async def test_a_silent_stream_raises_instead_of_hanging(tmp_path: Path) -> None:
    # one event a second: VPIN needs 100 trades to size its buckets, so it stays silent
    with serving(tmp_path, "--rate", "1") as quiet:
        async with AsyncClient(quiet.base, stall_s=1.5) as client:
            started = time.monotonic()
            with pytest.raises(StreamStalled):
                async for _ in client.vpin("BTC/USD", venue="sim"):
                    pass
            assert time.monotonic() - started < 10
