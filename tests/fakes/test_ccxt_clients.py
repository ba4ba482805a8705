"""A widely used third-party client (ccxt's websocket classes, pinned in the dev extra) against
each fake over TLS, with only its URLs changed and our CA trusted: it loads its markets from the
fake's REST listings and builds, from the same recorded file replayed verbatim, the same book as
our own feed (which trusts the CA through `Settings.ca_file`, as `serve --ca-file` does)."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import ccxt.pro
import pytest

from quantsaas.config import Settings
from quantsaas.engine import Engine
from quantsaas.fakes.binance import BinanceFakeConfig, FakeBinance
from quantsaas.fakes.coinbase import CoinbaseFakeConfig, FakeCoinbase
from quantsaas.fakes.deribit import DeribitFakeConfig, FakeDeribit
from quantsaas.fakes.kraken import FakeKraken, KrakenFakeConfig
from quantsaas.fakes.server import FakeServer
from quantsaas.fakes.tls import make_tls
from quantsaas.feeds.registry import build_feeds
from quantsaas.model import Instrument

SAMPLES = Path(__file__).parents[1] / "feeds" / "samples"
Levels = list[tuple[Decimal, Decimal]]


async def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


@asynccontextmanager
async def serving(fake: FakeServer, tmp_path: Path) -> AsyncIterator[Path]:
    """Start `fake` over TLS; yields the CA file clients must trust."""
    fake.tls = make_tls(tmp_path)
    await fake.start()
    try:
        yield fake.tls.ca_file
    finally:
        await fake.stop()


@asynccontextmanager
async def our_engine(settings: Settings) -> AsyncIterator[Engine]:
    engine = Engine(build_feeds(settings), lambda topic, event: None)  # books only
    task = asyncio.create_task(engine.run())
    try:
        yield engine
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def our_book(engine: Engine, instrument: Instrument) -> tuple[Levels, Levels]:
    book = engine.books.get(instrument.key)
    if book is None:
        return [], []

    def exact(levels: list[tuple[int, int]]) -> Levels:
        return [
            (Decimal(p).scaleb(-instrument.price_scale), Decimal(s).scaleb(-instrument.size_scale))
            for p, s in levels
        ]

    return exact(book.bids()), exact(book.asks())


def their_book(client: Any, symbol: str) -> tuple[Levels, Levels]:
    """ccxt keeps floats parsed from the venue's short decimal text: repr gives that text back."""
    book = client.orderbooks.get(symbol)
    if book is None:
        return [], []

    def exact(side: Any) -> Levels:
        return [(Decimal(repr(p)), Decimal(repr(s))) for p, s, *_ in side]

    return exact(book["bids"]), exact(book["asks"])


async def same_books(
    fake: FakeServer, engine: Engine, instrument: Instrument, client: Any, symbol: str
) -> tuple[Levels, Levels]:
    """Wait until both replays ended and the two books agree; return the book."""
    await wait_until(lambda: fake.replays_done >= 2, 20, "both replays to end")
    await wait_until(
        lambda: our_book(engine, instrument) == their_book(client, symbol), 10, "equal books"
    )
    ours = our_book(engine, instrument)
    assert ours[0] and ours[1], "an empty book proves nothing"
    return ours


def watch(client: Any, symbol: str, **kwargs: Any) -> asyncio.Task[Any]:
    async def loop() -> None:
        while True:
            await client.watch_order_book(symbol, **kwargs)

    return asyncio.create_task(loop())


@asynccontextmanager
async def ccxt_client(client: Any, symbol: str, **kwargs: Any) -> AsyncIterator[Any]:
    task = watch(client, symbol, **kwargs)
    try:
        yield client
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await client.close()
        await asyncio.sleep(0.25)  # aiohttp closes TLS transports after the session (its docs)
        gc.collect()  # a socket ccxt leaked would warn here, in its own test
    if task.done() and not task.cancelled() and task.exception() is not None:
        raise task.exception()  # type: ignore[misc]


@pytest.mark.asyncio
async def test_binance_ccxt_and_our_feed_build_the_same_book(tmp_path: Path) -> None:
    config = BinanceFakeConfig(
        replay=SAMPLES / "binance_depth.jsonl",
        snapshot=SAMPLES / "binance_depth_snapshot.jsonl",
        replay_per_s=400,
    )
    fake = FakeBinance(config)
    async with serving(fake, tmp_path) as ca:
        base = f"127.0.0.1:{fake.port}"
        settings = Settings(
            feeds=("binance",),
            binance_ws_url=f"wss://{base}",
            binance_rest_url=f"https://{base}",
            binance_symbols=("NKN/USDT",),
            ca_file=ca,
        )
        client = ccxt.pro.binance(
            {"cafile": str(ca), "options": {"fetchMarkets": {"types": ["spot"]}}}
        )
        client.urls["api"]["ws"]["spot"] = f"wss://{base}/ws"
        client.urls["api"]["public"] = f"https://{base}/api/v3"
        async with our_engine(settings) as engine, ccxt_client(client, "NKN/USDT"):
            instrument = engine.feeds[0].instruments[0]
            bids, asks = await same_books(fake, engine, instrument, client, "NKN/USDT")
    assert client.markets["NKN/USDT"]["id"] == "NKNUSDT"  # loaded from exchangeInfo
    assert bids[0][0] < asks[0][0]


@pytest.mark.asyncio
async def test_kraken_ccxt_and_our_feed_build_the_same_book(tmp_path: Path) -> None:
    fake = FakeKraken(KrakenFakeConfig(replay=SAMPLES / "kraken_v2_book.jsonl", replay_per_s=50))
    async with serving(fake, tmp_path) as ca:
        base = f"127.0.0.1:{fake.port}"
        settings = Settings(
            feeds=("kraken",),
            kraken_ws_url=f"wss://{base}/v2",
            kraken_symbols=("ETH/USD",),
            ca_file=ca,
        )
        client = ccxt.pro.kraken({"cafile": str(ca)})
        client.urls["api"]["ws"]["publicV2"] = f"wss://{base}/v2"
        client.urls["api"]["public"] = f"https://{base}"
        async with our_engine(settings) as engine, ccxt_client(client, "ETH/USD"):
            feed = engine.feeds[0]
            bids, asks = await same_books(fake, engine, feed.instruments[0], client, "ETH/USD")
    assert len(bids) == len(asks) == 10  # the update deleted one ask and added another
    assert (Decimal("1797.52"), Decimal("1.56601318")) in asks
    assert feed.stats.malformed == 0  # both checksums verified on our side


def coinbase_settings(
    base: str, ca: Path, api: Literal["exchange", "advanced"], product: str
) -> Settings:
    return Settings(
        feeds=("coinbase",),
        coinbase_ws_url=f"wss://{base}",
        coinbase_api=api,
        coinbase_symbols=(product,),
        ca_file=ca,
    )


@pytest.mark.asyncio
async def test_coinbase_exchange_ccxt_and_our_feed_build_the_same_book(tmp_path: Path) -> None:
    recorded = SAMPLES / "coinbase_exchange_level2.jsonl"
    fake = FakeCoinbase(CoinbaseFakeConfig(replay=recorded, replay_per_s=400))
    async with serving(fake, tmp_path) as ca:
        base = f"127.0.0.1:{fake.port}"
        # ccxt always signs `level2` (it needs authentication on the venue): any key will do
        client = ccxt.pro.coinbaseexchange(
            {"cafile": str(ca), "apiKey": "k", "secret": "c2VjcmV0", "password": "p"}
        )
        client.urls["api"]["ws"] = f"wss://{base}"
        client.urls["api"]["public"] = f"https://{base}"
        settings = coinbase_settings(base, ca, "exchange", "SKL-GBP")
        async with our_engine(settings) as engine, ccxt_client(client, "SKL/GBP"):
            instrument = engine.feeds[0].instruments[0]
            await same_books(fake, engine, instrument, client, "SKL/GBP")


def advanced_capture(source: Path, target: Path, first: int) -> Path:
    """The real Exchange capture re-enveloped as Advanced Trade `l2_data` frames whose
    `sequence_num` starts at `first` (a capture taken mid-connection)."""
    import orjson

    lines = []
    for number, raw in enumerate(source.read_bytes().splitlines()):
        frame = orjson.loads(raw)
        seq = first + number
        if frame["type"] == "subscriptions":
            events: list[Any] = [{"subscriptions": {"level2": ["SKL-GBP"]}}]
            channel = "subscriptions"
        else:
            channel = "l2_data"
            if frame["type"] == "snapshot":
                rows = [("bid", p, q) for p, q in frame["bids"]]
                rows += [("offer", p, q) for p, q in frame["asks"]]
            else:
                rows = [("bid" if s == "buy" else "offer", p, q) for s, p, q in frame["changes"]]
            updates = [
                {
                    "side": s,
                    "event_time": "2021-04-17T16:43:37Z",
                    "price_level": p,
                    "new_quantity": q,
                }
                for s, p, q in rows
            ]
            kind = "snapshot" if frame["type"] == "snapshot" else "update"
            events = [{"type": kind, "product_id": frame["product_id"], "updates": updates}]
        envelope = {
            "channel": channel,
            "client_id": "",
            "timestamp": "2021-04-17T16:43:37.078325Z",
            "sequence_num": seq,
            "events": events,
        }
        lines.append(orjson.dumps(envelope))
    target.write_bytes(b"\n".join(lines) + b"\n")
    return target


@pytest.mark.asyncio
async def test_coinbase_advanced_capture_not_starting_at_one_replays_cleanly(
    tmp_path: Path,
) -> None:
    recorded = advanced_capture(
        SAMPLES / "coinbase_exchange_level2.jsonl", tmp_path / "advanced.jsonl", 5_000
    )
    fake = FakeCoinbase(CoinbaseFakeConfig(api="advanced", replay=recorded, replay_per_s=400))
    async with serving(fake, tmp_path) as ca:
        base = f"127.0.0.1:{fake.port}"
        client = ccxt.pro.coinbase({"cafile": str(ca)})
        client.urls["api"]["ws"] = f"wss://{base}"
        client.urls["api"]["rest"] = f"https://{base}"
        settings = coinbase_settings(base, ca, "advanced", "SKL-GBP")
        async with our_engine(settings) as engine, ccxt_client(client, "SKL/GBP"):
            feed = engine.feeds[0]
            await same_books(fake, engine, feed.instruments[0], client, "SKL/GBP")
    assert feed.stats.gaps == 0 and feed.stats.reconnects == 0  # no sequence_num of the fake's


def deribit_capture(source: Path, target: Path) -> Path:
    """The real capture on the public `100ms` interval (`raw` needs authentication)."""
    target.write_bytes(source.read_bytes().replace(b".raw", b".100ms"))
    return target


@pytest.mark.asyncio
async def test_deribit_ccxt_and_our_feed_build_the_same_book(tmp_path: Path) -> None:
    recorded = deribit_capture(SAMPLES / "deribit_book.jsonl", tmp_path / "deribit.jsonl")
    name = "BTC-24SEP21-8000-P"
    fake = FakeDeribit(DeribitFakeConfig(replay=recorded, replay_per_s=200))
    async with serving(fake, tmp_path) as ca:
        base = f"127.0.0.1:{fake.port}"
        settings = Settings(
            feeds=("deribit",),
            deribit_ws_url=f"wss://{base}/ws/api/v2",
            deribit_rest_url=f"https://{base}",
            deribit_currencies=("BTC",),
            deribit_instruments=(name,),
            ca_file=ca,
        )
        client = ccxt.pro.deribit({"cafile": str(ca)})
        client.urls["api"]["ws"] = f"wss://{base}/ws/api/v2"
        client.urls["api"]["rest"] = f"https://{base}"
        await client.load_markets()
        symbol = client.markets_by_id[name][0]["symbol"]
        async with our_engine(settings) as engine, ccxt_client(client, symbol):
            instrument = engine.feeds[0].instruments[0]
            await same_books(fake, engine, instrument, client, symbol)
