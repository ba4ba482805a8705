"""Every instrument `/api/v1/instruments` lists is reachable by every name it is listed with,
through every REST route and WebSocket channel that applies to it (issue 15, item 2).

One service runs the simulator (with its option chains) and the four venue feeds against the
loopback fakes: Binance, Coinbase (with `BTC-PERP-INTX`, a product whose name holds a dash),
Kraken and Deribit (options named like `BTC-5DEC26-48000-C`), recording into a temporary
directory so the history routes have data too.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import orjson
import pytest
import pytest_asyncio
from websockets.asyncio.client import ClientConnection, connect

from helpers import serve_in_loop
from quantsaas import runtime
from quantsaas.api.app import create_app
from quantsaas.config import Settings
from quantsaas.fakes.binance import BinanceFakeConfig, FakeBinance
from quantsaas.fakes.coinbase import CoinbaseFakeConfig, FakeCoinbase
from quantsaas.fakes.deribit import DeribitFakeConfig, FakeDeribit
from quantsaas.fakes.kraken import FakeKraken, KrakenFakeConfig
from quantsaas.fakes.server import FakeServer
from quantsaas.model import Instrument
from quantsaas.symbols import ambiguous

JSON = dict[str, Any]
VENUES = ("sim", "binance", "coinbase", "kraken", "deribit")
PER_INSTRUMENT = ("book", "trades", "ticker", "candles", "ofi", "vpin")
CONSOLIDATED = ("book", "bbo", "consolidated_book", "tape")
BY_UNDERLYING = ("options", "greeks")


@dataclass
class World:
    http: httpx.AsyncClient
    ws_url: str
    instruments: Mapping[tuple[str, str], Instrument]


async def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


@pytest_asyncio.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    fake_binance = FakeBinance(BinanceFakeConfig(symbols=("BTCUSDT", "ETHUSDT"), rate=20))
    fake_coinbase = FakeCoinbase(CoinbaseFakeConfig(symbols=("BTC-USD", "BTC-PERP-INTX"), rate=20))
    fake_kraken = FakeKraken(KrakenFakeConfig(symbols=("BTC/USD", "ETH/USD"), rate=20))
    fake_deribit = FakeDeribit(DeribitFakeConfig(currencies=("BTC",), rate=20))
    fakes: list[FakeServer] = [fake_binance, fake_coinbase, fake_kraken, fake_deribit]
    try:
        binance = f"127.0.0.1:{await fake_binance.start()}"
        coinbase = f"127.0.0.1:{await fake_coinbase.start()}"
        kraken = f"127.0.0.1:{await fake_kraken.start()}"
        deribit = f"127.0.0.1:{await fake_deribit.start()}"
        settings = Settings(
            feeds=VENUES,
            sim_rate=20,
            binance_ws_url=f"ws://{binance}",
            binance_rest_url=f"http://{binance}",
            binance_symbols=("BTC/USDT", "ETH/USDT"),
            coinbase_ws_url=f"ws://{coinbase}",
            coinbase_symbols=("BTC-USD", "BTC-PERP-INTX"),
            kraken_ws_url=f"ws://{kraken}/v2",
            kraken_symbols=("BTC/USD", "ETH/USD"),
            deribit_ws_url=f"ws://{deribit}/ws/api/v2",
            deribit_rest_url=f"http://{deribit}",
            deribit_currencies=("BTC",),
            deribit_max_options=4,
            feed_backoff_initial_s=0.1,
            feed_backoff_cap_s=0.5,
            data_dir=tmp_path,
            record_flush_s=60,
        )
        # the Deribit chain is fetched over REST from the fake, which runs on this loop
        built = await asyncio.to_thread(runtime.build, settings, record=True)
        engine, recorder, analytics = built.engine, built.recorder, built.analytics
        assert engine is not None and recorder is not None and analytics is not None
        app = create_app(built)
        async with (
            serve_in_loop(app) as address,
            httpx.AsyncClient(base_url=f"http://{address}", timeout=10) as http,
        ):
            venue_books = [b for b in engine.books.values() if b.instrument.venue in VENUES]
            await wait_until(lambda: all(b.valid for b in venue_books), 30, "every book synced")
            chains = analytics.options
            await wait_until(
                lambda: {("sim", "BTC/USD"), ("deribit", "BTC/USD")} <= set(chains),
                10,
                "option tickers",
            )
            await asyncio.to_thread(recorder.flush)
            yield World(http, f"ws://{address}/ws", built.read_model.instruments())
    finally:
        for fake in fakes:
            await fake.stop()


def names(instrument: JSON) -> list[str]:
    """Every name an instrument is listed with, and lower-case spellings of them."""
    listed = [instrument["symbol"], instrument["path_symbol"], instrument["native_symbol"]]
    return list(dict.fromkeys([*listed, *(n.lower() for n in listed)]))


def in_path(instrument: JSON) -> list[str]:
    """The names that fit in a URL path segment (Kraken's native `BTC/USD` does not)."""
    return [name for name in names(instrument) if "/" not in name]


async def get(world: World, path: str, **params: str) -> JSON:
    response = await world.http.get(path, params=params)
    assert response.status_code == 200, f"{path} {params}: {response.text[:300]}"
    body: JSON = response.json()
    return body


async def check_rest(world: World, inst: JSON) -> None:
    venue, symbol, kind = inst["venue"], inst["symbol"], inst["kind"]
    for name in in_path(inst):
        segment = quote(name, safe="")
        response = await world.http.get(f"/api/v1/book/{venue}/{segment}", params={"depth": 5})
        if kind == "consolidated" and response.status_code == 503:
            # independent simulations behind the venues cross: a merged book is then not served
            assert response.json()["code"] == "book-not-ready"
        else:
            assert response.status_code == 200, response.text[:300]
            assert (response.json()["venue"], response.json()["symbol"]) == (venue, symbol)
        trades = await get(world, f"/api/v1/trades/{venue}/{segment}")
        assert trades["symbol"] == symbol
    for name in names(inst):
        summary = await get(world, "/api/market_data", symbols=name, venue=venue)
        assert [(row["venue"], row["symbol"]) for row in summary["data"]] == [(venue, symbol)]
    path = inst["path_symbol"]
    for route in ("candles", "vwap", "ofi", "vpin"):
        url = f"/api/v1/analytics/{route}/{venue}/{path}"
        if kind == "consolidated":  # nothing of its own to analyse: a clean 404, not a 500
            assert (await world.http.get(url)).status_code == 404
        else:
            assert (await get(world, url))["symbol"] == symbol
    if kind == "consolidated":
        for route in ("bbo", "book", "tape"):
            for name in in_path(inst):
                body = await get(world, f"/api/v1/consolidated/{route}/{quote(name, safe='')}")
                assert body["symbol"] == symbol
        return
    now = time.time_ns()
    span = {"start": str(now - 3600 * 10**9), "end": str(now + 10**9)}
    book_at = await get(world, f"/api/v1/history/book/{venue}/{path}", at=span["end"])
    assert (book_at["venue"], book_at["symbol"]) == (venue, symbol)
    assert book_at["bids"] or book_at["asks"]
    for route in ("trades", "candles"):
        body = await get(world, f"/api/v1/history/{route}/{venue}/{path}", **span)
        assert body["symbol"] == symbol
    if kind == "option":
        currency = inst["base"]
        chain = await get(world, f"/api/v1/options/{currency}/chain", venue=venue)
        listed = [o["instrument_name"] for e in chain["expiries"] for o in e["options"]]
        assert symbol in listed


async def recv_until(ws: ClientConnection, match: Callable[[JSON], bool], what: str) -> JSON:
    deadline = time.monotonic() + 10
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no {what}")
        message: JSON = orjson.loads(await asyncio.wait_for(ws.recv(), left))
        assert message.get("type") != "error", message
        if match(message):
            return message


async def subscribe(
    ws: ClientConnection, channels: tuple[str, ...], name: str, venue: str
) -> list[list[str]]:
    request = {"channels": channels, "symbols": [name], "venues": [venue]}
    await ws.send(orjson.dumps({"op": "subscribe", **request}).decode())
    reply = await recv_until(ws, lambda m: m.get("type") == "subscribed", "subscribed reply")
    streams: list[list[str]] = reply["streams"]
    await ws.send(orjson.dumps({"op": "unsubscribe", **request}).decode())
    await recv_until(ws, lambda m: m.get("type") == "unsubscribed", "unsubscribed reply")
    return streams


async def check_stream(world: World, inst: JSON) -> None:
    venue, symbol, kind = inst["venue"], inst["symbol"], inst["kind"]
    channels = CONSOLIDATED if kind == "consolidated" else PER_INSTRUMENT
    async with connect(world.ws_url) as ws:
        await recv_until(ws, lambda m: m.get("type") == "info", "info")
        for name in names(inst):
            streams = await subscribe(ws, channels, name, venue)
            assert streams == [[channel, venue, symbol] for channel in channels], name
        if kind != "consolidated":
            request = {"op": "subscribe", "channels": ["book"], "symbols": [inst["path_symbol"]]}
            await ws.send(orjson.dumps({**request, "venues": [venue]}).decode())
            snapshot = await recv_until(
                ws, lambda m: m.get("type") == "snapshot", f"book snapshot of {symbol}"
            )
            assert (snapshot["venue"], snapshot["symbol"]) == (venue, symbol)
    if kind == "option":  # its chain's channels, under the underlying, by the option's name
        async with connect(world.ws_url) as ws:
            await recv_until(ws, lambda m: m.get("type") == "info", "info")
            subscribe_options = {"op": "subscribe", "channels": BY_UNDERLYING, "venues": [venue]}
            await ws.send(orjson.dumps({**subscribe_options, "symbols": [symbol]}).decode())
            reply = await recv_until(ws, lambda m: m.get("type") == "subscribed", "subscribed")
            underlying = inst["underlying"]
            assert reply["streams"] == [[c, venue, underlying] for c in BY_UNDERLYING]
            ticker = await recv_until(
                ws,
                lambda m: m.get("channel") == "options" and m["data"]["instrument_name"] == symbol,
                f"options message of {symbol}",
            )
            assert (ticker["venue"], ticker["data"]["underlying"]) == (venue, underlying)


@pytest.mark.asyncio
async def test_every_listed_instrument_is_reachable_everywhere(world: World) -> None:
    listed = (await get(world, "/api/v1/instruments"))["data"]
    by_key = {(i.venue, i.symbol): i for i in world.instruments.values()}
    assert ambiguous(by_key.values()) == []
    kinds: dict[str, int] = {}
    for inst in listed:
        model = by_key[(inst["venue"], inst["symbol"])]
        described = inst["option"]  # the listing says what makes an option one
        assert (described is None) == (model.option is None)
        inst["kind"] = (
            "consolidated"
            if inst["venue"] == "consolidated"
            else "option"
            if described is not None
            else "pair"
        )
        if model.option is not None:
            assert described["underlying"] == model.option.underlying
            assert described["expiry_ns"] == model.option.expiry_ns
            assert described["kind"] == model.option.kind
            assert described["strike"] == str(model.option.strike_decimal)
            inst["underlying"] = described["underlying"]
        kinds[inst["kind"]] = kinds.get(inst["kind"], 0) + 1
        await check_rest(world, inst)
        await check_stream(world, inst)
    assert {i["venue"] for i in listed} == {*VENUES, "consolidated"}
    # the service information names the chains, so the dashboard asks only for those
    info = await get(world, "/")
    chains = {(c["venue"], c["underlying"], c["currency"]) for c in info["option_chains"]}
    assert chains == {
        ("deribit", "BTC/USD", "BTC"),
        ("sim", "BTC/USD", "BTC"),
        ("sim", "ETH/USD", "ETH"),
    }
    assert kinds["option"] == 4 and kinds["consolidated"] >= 1
    dashed = [i["symbol"] for i in listed if "-" in i["native_symbol"].partition("-")[2]]
    assert "BTC/PERP-INTX" in dashed  # a native name with a dash beyond the pair's
