"""The shared transport: backoff bounds, unreachable venues, raw-frame tap, configuration."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve

from quantsaas.cli import parser, settings_from
from quantsaas.config import Settings
from quantsaas.errors import VenueError
from quantsaas.fakes.binance import BinanceFakeConfig, FakeBinance
from quantsaas.feeds.base import BooksStale
from quantsaas.feeds.binance.feed import BinanceFeed
from quantsaas.feeds.coinbase.feed import CoinbaseFeed
from quantsaas.feeds.deribit.feed import DeribitFeed
from quantsaas.feeds.deribit.parse import option_instrument
from quantsaas.feeds.instruments import binance_instruments, coinbase_instruments
from quantsaas.feeds.kraken.feed import KrakenFeed
from quantsaas.feeds.kraken.parse import kraken_instruments
from quantsaas.feeds.registry import build_feeds
from quantsaas.feeds.simulator import SimulatorFeed
from quantsaas.feeds.transport import Backoff, TransportConfig, WsFeed
from quantsaas.model import MarketEvent


def test_backoff_is_exponential_capped_and_jittered() -> None:
    backoff = Backoff(initial_s=0.5, cap_s=30.0, factor=2.0, jitter=0.5)
    assert backoff.delay(0, lambda: 0.0) == 0.5
    assert backoff.delay(3, lambda: 0.0) == 4.0
    assert backoff.delay(100, lambda: 0.0) == 30.0
    assert backoff.delay(100, lambda: 1.0) == 15.0
    delays = [backoff.delay(10) for _ in range(200)]
    assert all(15.0 <= d <= 30.0 for d in delays) and len(set(delays)) > 100


@pytest.mark.asyncio
async def test_unreachable_venue_is_reported_and_retried() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = TransportConfig(backoff=Backoff(initial_s=0.01, cap_s=0.05))
    feed = BinanceFeed(binance_instruments(["BTC/USDT"]), f"ws://127.0.0.1:{port}", config=config)
    task = asyncio.create_task(feed.run(lambda event: None))
    try:
        deadline = time.monotonic() + 5
        while feed.stats.reconnects < 3 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert feed.stats.reconnects >= 3
        assert feed.stats.state.value in ("disconnected", "starting")
        assert "cannot connect" in (feed.stats.last_error or "")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert feed.stats.state.value == "stopped"


@pytest.mark.asyncio
async def test_raw_tap_sees_every_frame_with_a_receive_time_before_parsing() -> None:
    fake = FakeBinance(BinanceFakeConfig(symbols=("BTCUSDT",), rate=100, interval_s=0.05))
    port = await fake.start()
    feed = BinanceFeed(
        binance_instruments(["BTC/USDT"]), f"ws://127.0.0.1:{port}", f"http://127.0.0.1:{port}"
    )
    taps: list[tuple[str, str | bytes, int]] = []
    events: list[MarketEvent] = []
    feed.taps.append(lambda venue, raw, ts: taps.append((venue, raw, ts)))
    task = asyncio.create_task(
        feed.run(lambda e: None if isinstance(e, BooksStale) else events.append(e))
    )
    try:
        deadline = time.monotonic() + 5
        while len(taps) < 20 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await fake.stop()
    assert len(taps) >= 20 and feed.stats.messages == len(taps)
    assert all(
        venue == "binance" and b'"stream"' in bytes(raw, "utf8")
        for venue, raw, _ in taps
        if isinstance(raw, str)
    )  # noqa: E501
    stamps = [ts for _, _, ts in taps]
    assert stamps == sorted(stamps)
    assert feed.stats.bytes == sum(len(raw) for _, raw, _ in taps)
    assert events and all(e.ts_recv in set(stamps) for e in events if e.ts_recv in set(stamps))


def test_registry_builds_every_venue_with_configured_endpoints() -> None:
    settings = Settings(
        feeds=("sim", "binance", "coinbase"),
        binance_ws_url="ws://127.0.0.1:9001",
        binance_rest_url="http://127.0.0.1:9001",
        coinbase_ws_url="ws://127.0.0.1:9002",
        coinbase_api="advanced",
        coinbase_symbols=("BTC/USD",),
        feed_stall_s=3.0,
    )
    sim, binance, coinbase = build_feeds(settings)
    assert isinstance(sim, SimulatorFeed)
    assert isinstance(binance, BinanceFeed) and binance.rest_url == "http://127.0.0.1:9001"
    assert binance.connect_url().startswith("ws://127.0.0.1:9001/stream?streams=btcusdt@depth")
    assert isinstance(coinbase, CoinbaseFeed) and coinbase.api == "advanced"
    assert coinbase.url == "ws://127.0.0.1:9002" and coinbase.config.stall_s == 3.0
    assert [inst.native_symbol for inst in coinbase.instruments] == ["BTC-USD"]


def test_cli_endpoint_options_reach_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUANTSAAS_BINANCE_SYMBOLS", "SOL/USDT")
    args = parser().parse_args(
        [
            "serve",
            "--feeds",
            "binance,coinbase",
            "--binance-ws",
            "ws://h:1",
            "--stall",
            "2",
            "--coinbase-api",
            "advanced",
        ]
    )
    settings = settings_from(args)
    assert settings.binance_ws_url == "ws://h:1" and settings.feed_stall_s == 2.0
    assert settings.binance_symbols == ("SOL/USDT",) and settings.coinbase_api == "advanced"


async def _run_briefly(fake: FakeBinance, seconds: float) -> BinanceFeed:
    port = await fake.start()
    feed = BinanceFeed(
        binance_instruments(["BTC/USDT"]),
        f"ws://127.0.0.1:{port}",
        f"http://127.0.0.1:{port}",
        config=TransportConfig(ping_interval_s=None, backoff=Backoff(initial_s=0.05, cap_s=0.2)),
    )
    task = asyncio.create_task(feed.run(lambda event: None))
    try:
        await asyncio.sleep(seconds)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await fake.stop()
    return feed


@pytest.mark.asyncio
async def test_server_pings_are_answered() -> None:
    """The fake pings every 0.1 s and drops a connection whose pong is 0.3 s late."""
    config = BinanceFakeConfig(symbols=("BTCUSDT",), ping_interval_s=0.1, ping_timeout_s=0.3)
    feed = await _run_briefly(FakeBinance(config), 1.5)
    assert feed.stats.reconnects == 0 and feed.stats.last_error is None
    assert feed.stats.state.value == "stopped"


@pytest.mark.asyncio
async def test_forced_disconnect_at_the_connection_lifetime_reconnects() -> None:
    """Binance closes every connection after 24 h; the fake does it after 0.5 s."""
    feed = await _run_briefly(FakeBinance(BinanceFakeConfig(lifetime_s=0.5)), 2.0)
    assert feed.stats.reconnects >= 2
    assert "lifetime" in (feed.stats.last_error or "")
    assert feed.stats.resyncs == 0 and feed.stats.gaps == 0


BIG = "X" * 100_000


def _venue_feeds() -> list[tuple[WsFeed, bytes, bytes, bytes]]:
    """Per venue: a feed (never run), a poisoned book frame of its first instrument, `{}` and a
    well-formed frame of a type it does not consume."""
    deribit_name = "BTC-24SEP21-8000-P"
    return [
        (
            BinanceFeed(binance_instruments(["NKN/USDT"])),
            b'{"stream":"nknusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"s":"NKNUSDT",'
            b'"U":5,"u":6,"b":[["1e999999","1.0"]],"a":[]}}',
            b"{}",
            b'{"stream":"nknusdt@kline_1m","data":{"e":"kline","E":1,"s":"NKNUSDT","k":{}}}',
        ),
        (
            CoinbaseFeed(coinbase_instruments(["BTC-USD"])),
            b'{"type":"l2update","product_id":"BTC-USD","changes":[["sell","1e999999","1"]],'
            b'"time":"2021-04-17T16:43:37.078325Z"}',
            b"{}",
            b'{"type":"received","product_id":"BTC-USD"}',
        ),
        (
            CoinbaseFeed(coinbase_instruments(["BTC-USD"]), api="advanced"),
            b'{"channel":"l2_data","timestamp":"2026-09-07T01:57:58.894355Z","sequence_num":0,'
            b'"events":[{"type":"update","product_id":"BTC-USD","updates":[{"side":"bid",'
            b'"price_level":"-3","new_quantity":"1"}]}]}',
            b"{}",
            b'{"channel":"futures_balance_summary","sequence_num":0,"events":[]}',
        ),
        (
            KrakenFeed(kraken_instruments(["BTC/USD"])),
            b'{"channel":"book","type":"snapshot","data":[{"symbol":"BTC/USD","bids":[{"price":'
            b'1e999999,"qty":1.0}],"asks":[],"checksum":1}]}',
            b"{}",
            b'{"channel":"level3","type":"update","data":[]}',
        ),
        (
            DeribitFeed([option_instrument(deribit_name)]),
            b'{"jsonrpc":"2.0","method":"subscription","params":{"channel":"book.'
            + deribit_name.encode()
            + b'.100ms","data":{"type":"snapshot","timestamp":1,"instrument_name":"'
            + deribit_name.encode()
            + b'","change_id":1,"bids":[["new",0.001,-2.5]],"asks":[]}}}',
            b"{}",
            b'{"jsonrpc":"2.0","method":"subscription","params":{"channel":"markprice.options.'
            b'btc_usd","data":[]}}',
        ),
    ]


@pytest.mark.parametrize("index", range(5))
def test_a_poisoned_book_frame_is_counted_logged_briefly_and_resyncs_the_book(
    index: int, caplog: pytest.LogCaptureFixture
) -> None:
    feed, poisoned, empty, unknown = _venue_feeds()[index]
    stale: list[str] = []
    feed.sink = lambda item: stale.extend(  # what `run` sets: BooksStale items among events
        i.symbol for i in getattr(item, "instruments", ())
    )
    assert feed.receive(poisoned, 1) == []
    assert feed.stats.malformed == 1 and feed.stats.messages == 1
    assert feed.stats.last_error is not None and len(feed.stats.last_error) < 600
    resynced = feed.stats.resyncs == 1 or feed._reconnect_reason is not None
    assert resynced, "the book that missed an update must be resynced"
    if feed.venue != "coinbase":  # coinbase resyncs by reconnecting (all books go stale then)
        assert stale == [feed.instruments[0].symbol]
    assert all(len(record.getMessage()) < 700 for record in caplog.records)
    # `{}` is malformed or ignored; a well-formed frame of another type is ignored: both counted
    feed.receive(empty, 2)
    feed.receive(unknown, 3)
    assert feed.stats.malformed + feed.stats.ignored == 3
    assert feed.stats.ignored >= 1


@pytest.mark.parametrize("index", range(5))
def test_a_100_kb_symbol_is_never_echoed_whole(
    index: int, caplog: pytest.LogCaptureFixture
) -> None:
    feed, poisoned, _, _ = _venue_feeds()[index]
    native = feed.instruments[0].native_symbol.encode()
    feed.receive(poisoned.replace(native, BIG.encode()), 1)
    try:  # a venue's refusal ends the connection (coinbase): its text is bounded too
        feed.receive(b'{"type":"error","message":"' + BIG.encode() + b'"}', 2)
    except VenueError as exc:
        assert len(str(exc)) < 300
    assert feed.stats.malformed >= 1
    assert feed.stats.last_error is not None and len(feed.stats.last_error) < 600
    assert all(len(record.getMessage()) < 700 for record in caplog.records)


async def _server(answer: bool) -> tuple[Any, int]:
    """A venue that never sends on its own; it answers each message (a probe) only if asked."""

    async def handler(conn: ServerConnection) -> None:
        async for _ in conn:
            if answer:
                await conn.send('{"result":[],"id":1}')

    server = await serve(handler, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


@pytest.mark.asyncio
@pytest.mark.parametrize("answer", [False, True])
async def test_a_dead_connection_is_found_in_seconds_and_probe_answers_are_not_data(
    answer: bool,
) -> None:
    server, port = await _server(answer)
    config = TransportConfig(
        stall_s=60.0, liveness_s=0.6, probe_s=0.2, backoff=Backoff(initial_s=0.05, cap_s=0.1)
    )
    feed = BinanceFeed(binance_instruments(["BTC/USDT"]), f"ws://127.0.0.1:{port}", config=config)
    task = asyncio.create_task(feed.run(lambda event: None))
    try:
        await asyncio.sleep(2.0)
        if answer:  # probes answered: alive, never reconnected, and no data ever seen
            assert feed.stats.reconnects == 0 and feed.stats.messages >= 3
            assert feed.stats.last_data_ns is None and feed.stats.last_message_ns is not None
        else:  # nothing at all: dead within liveness_s, every time
            assert feed.stats.reconnects >= 2
            assert "not even a heartbeat" in (feed.stats.last_error or "")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        server.close()
        await server.wait_closed()


def test_heartbeats_are_frames_but_never_data() -> None:
    feed = CoinbaseFeed(coinbase_instruments(["BTC-USD"]))
    feed.receive(
        b'{"type":"heartbeat","sequence":90,"product_id":"BTC-USD",'
        b'"time":"2014-11-07T08:19:28.464459Z"}',
        5,
    )
    assert feed.stats.last_message_ns == 5 and feed.stats.last_data_ns is None
    deribit = DeribitFeed([option_instrument("BTC-24SEP21-8000-P")])
    deribit.receive(b'{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"test_request"}}', 7)
    assert deribit.stats.last_message_ns == 7 and deribit.stats.last_data_ns is None
    assert deribit.test_requests == 1
