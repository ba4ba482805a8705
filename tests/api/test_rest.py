import asyncio
from pathlib import Path

import httpx
import pytest

from conftest import Service
from helpers import snapshot, trade
from quantsaas.feeds.base import FeedState
from quantsaas.store.recorder import Recorder, RecorderConfig
from secured import secured_service

PROBLEM = "application/problem+json"


async def settle() -> None:
    await asyncio.sleep(0.05)


async def seed_market(service: Service) -> None:
    service.feed.push(snapshot(service.btc, [(10_000, 5), (9_990, 7)], [(10_010, 3), (10_020, 1)]))
    service.feed.push(snapshot(service.eth, [(2_000, 1)], [(2_001, 1)]))
    for n, price in enumerate((10_000, 10_010, 10_005)):
        service.feed.push(
            trade(service.btc, price, 2_500_000, f"t{n}", 1_700_000_000_000_000_000 + n)
        )
    await settle()


@pytest.mark.asyncio
async def test_root_describes_the_service(service: Service) -> None:
    async with httpx.AsyncClient(base_url=service.http) as client:
        body = (await client.get("/")).json()
    assert body["service"] == "quant-saas"
    assert body["venues"] == ["test"]
    assert body["symbols"] == ["BTC/USD", "ETH/USD"]
    assert body["links"]["stream"] == "/ws"


@pytest.mark.asyncio
async def test_health_reports_each_feed_and_fails_when_none_is_live(service: Service) -> None:
    await seed_market(service)
    async with httpx.AsyncClient(base_url=service.http) as client:
        ok = await client.get("/health")
        assert ok.status_code == 200
        feed = ok.json()["feeds"][0]
        assert feed["state"] == "live" and feed["live"] is True
        assert feed["messages"] == 5 and feed["last_message_age_s"] < 5
        assert ok.json()["books"] == {"total": 2, "valid": 2}
        service.feed.stats.state = FeedState.DISCONNECTED
        down = await client.get("/health")
    assert down.status_code == 503
    assert down.json()["status"] == "down"


@pytest.mark.asyncio
async def test_market_data_summarises_every_symbol_exactly(service: Service) -> None:
    await seed_market(service)
    async with httpx.AsyncClient(base_url=service.http) as client:
        everything = (await client.get("/api/market_data")).json()["data"]
        filtered = (await client.get("/api/market_data", params={"symbols": "btc-usd"})).json()
    assert [row["symbol"] for row in everything] == ["BTC/USD", "ETH/USD"]
    (btc,) = filtered["data"]
    assert btc["last"] == "100.05"
    assert btc["bid"] == "100.00" and btc["ask"] == "100.10"
    assert btc["bidVolume"] == "0.00000005"
    assert btc["spread"] == "0.10" and btc["mid"] == "100.050"
    assert btc["open"] == "100.00" and btc["change"] == "0.05"
    assert btc["percentage"] == pytest.approx(0.05)
    assert btc["baseVolume"] == "0.07500000"
    assert btc["timestamp"] == 1_700_000_000_000
    assert btc["ts_event"] == 1_700_000_000_000_000_002


@pytest.mark.asyncio
async def test_instruments_list_precision_and_grids(service: Service) -> None:
    async with httpx.AsyncClient(base_url=service.http) as client:
        data = (await client.get("/api/v1/instruments")).json()["data"]
    assert data[0] == {
        "venue": "test",
        "symbol": "BTC/USD",
        "path_symbol": "BTC-USD",
        "base": "BTC",
        "quote": "USD",
        "native_symbol": "BTCUSD",
        "tick_size": "0.01",
        "lot_size": "0.00000001",
        "price_precision": 2,
        "amount_precision": 8,
        "option": None,
    }


@pytest.mark.asyncio
async def test_book_endpoint_returns_top_levels(service: Service) -> None:
    await seed_market(service)
    async with httpx.AsyncClient(base_url=service.http) as client:
        body = (await client.get("/api/v1/book/test/BTC-USD", params={"depth": 1})).json()
    assert body["bids"] == [["100.00", "0.00000005"]]
    assert body["asks"] == [["100.10", "0.00000003"]]
    assert body["seq"] == 1 and body["nonce"] == 1


@pytest.mark.asyncio
async def test_trades_endpoint_returns_the_latest_oldest_first(service: Service) -> None:
    await seed_market(service)
    async with httpx.AsyncClient(base_url=service.http) as client:
        body = (await client.get("/api/v1/trades/test/BTC-USD", params={"limit": 2})).json()
    assert [t["id"] for t in body["data"]] == ["t1", "t2"]
    assert body["data"][1]["price"] == "100.05" and body["data"][1]["amount"] == "0.02500000"


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/api/v1/book/test/DOGE-USD", 404, "unknown-instrument"),
        ("/api/v1/book/nowhere/BTC-USD", 404, "unknown-instrument"),
        ("/api/v1/book/test/BTC_USD", 404, "unknown-instrument"),
        ("/api/v1/book/test/BTC-USD?depth=0", 422, "validation-error"),
        ("/api/v1/book/test/BTC-USD?depth=abc", 422, "validation-error"),
        ("/api/v1/book/test/BTC-USD?depth=100000", 400, "bad-request"),
        ("/api/v1/trades/test/BTC-USD?limit=-1", 422, "validation-error"),
        ("/api/v1/trades/test/BTC-USD?limit=5000", 400, "bad-request"),
        ("/api/market_data?symbols=BTC/USD,NOPE/USD", 404, "unknown-instrument"),
        ("/api/market_data?venue=elsewhere", 404, "unknown-instrument"),
        ("/no/such/route", 404, "not-found"),
    ],
)
@pytest.mark.asyncio
async def test_bad_requests_get_problem_details(
    service: Service, path: str, status: int, code: str
) -> None:
    await seed_market(service)
    async with httpx.AsyncClient(base_url=service.http) as client:
        response = await client.get(path)
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["type"] == f"/problems/{code}" and body["code"] == code
    assert body["status"] == status and body["detail"]


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/book/test/" + "X" * 8000,
        "/api/v1/book/test/" + "X-" * 4000,
        "/api/v1/book/" + "V" * 8000 + "/BTC-USD",
        "/api/market_data?symbols=" + "Y/" * 900,
    ],
)
@pytest.mark.asyncio
async def test_a_huge_symbol_is_never_echoed_whole(service: Service, path: str) -> None:
    await seed_market(service)
    async with httpx.AsyncClient(base_url=service.http) as client:
        response = await client.get(path)
    assert response.status_code == 404
    assert len(response.json()["detail"]) < 300


@pytest.mark.asyncio
async def test_book_not_synchronised_is_503(service: Service) -> None:
    async with httpx.AsyncClient(base_url=service.http) as client:
        response = await client.get("/api/v1/book/test/ETH-USD")
    assert response.status_code == 503
    assert response.json()["code"] == "book-not-ready"


@pytest.mark.asyncio
async def test_openapi_documents_routes_and_problem_schema(service: Service) -> None:
    async with httpx.AsyncClient(base_url=service.http) as client:
        schema = (await client.get("/openapi.json")).json()
        docs = await client.get("/docs")
    assert docs.status_code == 200
    for path in ("/", "/health", "/api/market_data", "/api/v1/instruments",
                 "/api/v1/book/{venue}/{symbol}", "/api/v1/trades/{venue}/{symbol}"):  # fmt: skip
        assert path in schema["paths"]
    assert "Problem" in schema["components"]["schemas"]


@pytest.mark.asyncio
async def test_health_shows_the_data_directory_to_administrators_only(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/accounts.db"
    async with secured_service(tmp_path, url) as service:
        data = tmp_path / "recorded-here"
        service.app.state.recorder = Recorder(RecorderConfig(data))
        admin = await service.user_key("root@example.com", "pro", admin=True)
        user = await service.user_key("u@example.com", "pro")
        async with service.client() as http:
            for headers in ({}, {"X-API-Key": user}, {"X-API-Key": "qs_bad_key"}):
                body = (await http.get("/health", headers=headers)).json()
                assert "data_dir" not in body["recorder"] and str(tmp_path) not in str(body)
            shown = (await http.get("/health", headers={"X-API-Key": admin})).json()
            assert shown["recorder"]["data_dir"] == str(data.resolve())
