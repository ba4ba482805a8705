import asyncio
import json
from typing import Any

import httpx
import pytest
import websockets

from conftest import Service
from helpers import snapshot
from quantsaas.feeds.sim_options import OptionChainSim
from quantsaas.model import Side, Trade, now_ns

PROBLEM = "application/problem+json"
S = 1_000_000_000


def trades(service: Service, start: int) -> list[Trade]:
    prices = [10_000, 10_010, 10_005, 9_990, 10_020]
    return [
        Trade(service.btc, price, 100_000_000, Side.BUY if n % 2 else Side.SELL, f"t{n}",
              start + n * S // 2, start + n * S // 2)
        for n, price in enumerate(prices)
    ]  # fmt: skip


async def seed(service: Service) -> list[Trade]:
    start = now_ns() - 10 * S
    service.feed.push(snapshot(service.btc, [(10_000, 5)], [(10_010, 3)]))
    pushed = trades(service, start)
    for trade in pushed:
        service.feed.push(trade)
    await asyncio.sleep(0.05)
    return pushed


@pytest.mark.asyncio
async def test_candles_live_and_from_stored_trades_agree(service: Service) -> None:
    await seed(service)
    async with httpx.AsyncClient(base_url=service.http) as client:
        live = (await client.get("/api/v1/analytics/candles/test/BTC-USD?interval=1s")).json()
        stored = (
            await client.get("/api/v1/analytics/candles/test/BTC-USD?interval=1s&source=trades")
        ).json()
        minute = (await client.get("/api/v1/analytics/candles/test/BTC-USD?interval=1d")).json()
    assert [c["open"] for c in live["data"]] == [c["open"] for c in stored["data"]]
    assert [c["volume"] for c in live["data"]] == [c["volume"] for c in stored["data"]]
    assert sum(c["trades"] for c in live["data"]) == 5
    (day,) = minute["data"]
    assert (day["open"], day["high"], day["low"], day["close"]) == (
        "100.00", "100.20", "99.90", "100.20")  # fmt: skip
    assert day["volume"] == "5.00000000" and day["buy_volume"] == "2.00000000"
    assert day["vwap"] == "100.05"


@pytest.mark.asyncio
async def test_vwap_ofi_vpin_routes(service: Service) -> None:
    await seed(service)
    async with httpx.AsyncClient(base_url=service.http) as client:
        vwap = (await client.get("/api/v1/analytics/vwap/test/BTC-USD")).json()
        ofi = (await client.get("/api/v1/analytics/ofi/test/BTC-USD")).json()
        vpin = (await client.get("/api/v1/analytics/vpin/test/BTC-USD")).json()
    assert vwap["session"]["vwap"] == "100.05"
    assert [r["window_s"] for r in vwap["rolling"]] == [60, 300, 3600]
    assert ofi["levels"] == 5 and ofi["bucket_ms"] == 1000
    assert vpin["calibrating"] is True and vpin["data"] == []


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/api/v1/analytics/candles/test/BTC-USD?interval=2m", 400, "bad-request"),
        ("/api/v1/analytics/candles/test/BTC_USD", 404, "unknown-instrument"),
        ("/api/v1/analytics/candles/test/DOGE-USD", 404, "unknown-instrument"),
        ("/api/v1/analytics/ofi/nowhere/BTC-USD", 404, "unknown-instrument"),
        ("/api/v1/analytics/vpin/test/BTC-USD?limit=0", 422, "validation-error"),
        ("/api/v1/options/BTC/chain", 404, "unknown-instrument"),
        ("/api/v1/options/XRP/smile", 404, "unknown-instrument"),
    ],
)
async def test_bad_requests_are_problems(
    service: Service, path: str, status: int, code: str
) -> None:
    async with httpx.AsyncClient(base_url=service.http) as client:
        response = await client.get(path)
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["code"] == code


@pytest.mark.asyncio
async def test_option_chain_smile_and_greeks_stream(service: Service) -> None:
    now = now_ns()
    chain = OptionChainSim(service.btc, 0.6, now)  # an option chain on the test venue
    async with websockets.connect(service.ws) as ws:
        await ws.recv()  # info
        request = {"op": "subscribe", "channels": ["greeks", "candles"], "symbols": ["BTC/USD"]}
        await ws.send(json.dumps(request))
        assert json.loads(await ws.recv())["type"] == "subscribed"
        for ticker in chain.tickers(6_000_000.0, now):
            service.feed.push(ticker)
        await seed(service)
        seen: dict[str, dict[str, Any]] = {}
        while "candle" not in seen or "greeks" not in seen:
            message = json.loads(await asyncio.wait_for(ws.recv(), 5))
            seen.setdefault(message["type"], message)
    greeks = seen["greeks"]
    assert greeks["channel"] == "greeks" and greeks["symbol"] == chain.instruments[0].symbol
    assert set(greeks["data"]["ours"]) == {
        "price", "delta", "gamma", "vega", "theta", "rho", "coin_delta"
    }  # fmt: skip
    assert seen["candle"]["data"]["interval"] in ("1s", "1m", "5m", "15m", "1h", "4h", "1d")
    async with httpx.AsyncClient(base_url=service.http) as client:
        body = (await client.get("/api/v1/options/btc/chain")).json()
        smile = (await client.get("/api/v1/options/BTC/smile?venue=test")).json()
    assert body["underlying"] == "BTC/USD" and body["venue"] == "test"
    options = [o for e in body["expiries"] for o in e["options"]]
    assert len(options) == len(chain.instruments)
    first = options[0]
    assert first["ours"]["delta"] == pytest.approx(first["greeks"]["delta"], abs=1e-4)
    assert len(smile["term_structure"]) == len(body["expiries"])
    for expiry in smile["expiries"]:
        assert expiry["forward"] == 60_000.0
        assert 20 < expiry["atm_iv"] < 150
        assert expiry["rr25"] is None or expiry["rr25"] < 0  # the simulated smile has puts rich
