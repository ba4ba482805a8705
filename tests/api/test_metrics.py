"""/metrics, /livez and /readyz through a real server: the numbers move with what happens."""

import asyncio
import json
from pathlib import Path

import httpx
import pytest
import websockets
from prometheus_client.parser import text_string_to_metric_families

from conftest import Service
from helpers import (
    ScriptedFeed,
    accept_writes,
    delta,
    make_instrument,
    make_runtime,
    refuse_writes,
    snapshot,
)
from quantsaas.api.app import create_app
from quantsaas.config import Settings
from quantsaas.model import Side, Trade, now_ns
from quantsaas.store.recorder import Recorder, RecorderConfig
from secured import secured_service

Labels = dict[str, str]


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(text: str, name: str, **labels: str) -> float:
    return samples(text)[(name, tuple(sorted(labels.items())))]


async def scrape(client: httpx.AsyncClient) -> str:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


async def wait_for(predicate: object, client: httpx.AsyncClient, timeout: float = 3.0) -> str:
    assert callable(predicate)
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        text = await scrape(client)
        if predicate(text) or asyncio.get_running_loop().time() > deadline:
            return text
        await asyncio.sleep(0.02)


@pytest.mark.asyncio
async def test_feed_book_and_bus_metrics_follow_the_feed(service: Service) -> None:
    async with httpx.AsyncClient(base_url=service.http) as client:
        before = await scrape(client)
        assert value(before, "quantsaas_feed_messages_received_total", venue="test") == 0
        assert value(before, "quantsaas_book_valid", venue="test", symbol="BTC/USD") == 0
        assert "_created" not in before
        service.feed.push(snapshot(service.btc, [(10_000, 5)], [(10_010, 3)]))
        for sequence in range(2, 6):
            service.feed.push(delta(service.btc, [(9_990, sequence)], [], sequence))
        service.feed.stats.gaps, service.feed.stats.reconnects = 2, 1
        after = await wait_for(
            lambda text: value(text, "quantsaas_bus_published_messages_total") == 5, client
        )
    assert value(after, "quantsaas_feed_messages_received_total", venue="test") == 5
    assert value(after, "quantsaas_feed_received_bytes_total", venue="test") == 500
    assert value(after, "quantsaas_feed_gaps_total", venue="test") == 2
    assert value(after, "quantsaas_feed_reconnects_total", venue="test") == 1
    assert value(after, "quantsaas_feed_resyncs_total", venue="test") == 0
    assert value(after, "quantsaas_feed_live", venue="test") == 1
    assert value(after, "quantsaas_book_valid", venue="test", symbol="BTC/USD") == 1
    assert value(after, "quantsaas_book_age_seconds", venue="test", symbol="BTC/USD") > 0
    assert ("quantsaas_book_age_seconds", (("symbol", "ETH/USD"), ("venue", "test"))) not in (
        samples(after)
    )
    assert value(after, "quantsaas_bus_dropped_messages_total") == 0


@pytest.mark.asyncio
async def test_websocket_clients_and_messages_out(service: Service) -> None:
    service.feed.push(snapshot(service.btc, [(10_000, 5)], [(10_010, 3)]))
    async with httpx.AsyncClient(base_url=service.http) as client:
        async with websockets.connect(service.ws) as ws:
            await asyncio.wait_for(ws.recv(), 2)  # info
            await ws.send(json.dumps({"op": "subscribe", "channels": ["book"], "symbols": ["BTC"]}))
            await ws.send(
                json.dumps({"op": "subscribe", "channels": ["book"], "symbols": ["BTC/USD"]})
            )
            for _ in range(3):  # error, subscribed, snapshot
                await asyncio.wait_for(ws.recv(), 2)
            during = await scrape(client)
            assert value(during, "quantsaas_ws_clients") == 1
            assert value(during, "quantsaas_ws_connections_total") == 1
            assert value(during, "quantsaas_ws_messages_sent_total") == 4
            assert value(during, "quantsaas_bus_subscribers") >= 1
            assert value(during, "quantsaas_bus_queue_depth_max") >= 0
        after = await wait_for(lambda text: value(text, "quantsaas_ws_clients") == 0, client)
    assert value(after, "quantsaas_ws_clients") == 0
    assert value(after, "quantsaas_ws_connections_total") == 1


@pytest.mark.asyncio
async def test_http_latency_histogram_by_route_template(service: Service) -> None:
    service.feed.push(snapshot(service.btc, [(10_000, 5)], [(10_010, 3)]))
    await asyncio.sleep(0.05)
    async with httpx.AsyncClient(base_url=service.http) as client:
        for _ in range(3):
            assert (await client.get("/api/v1/book/test/BTC-USD")).status_code == 200
        assert (await client.get("/api/v1/book/test/DOGE-USD")).status_code == 404
        assert (await client.get("/no/such/path/12345")).status_code == 404
        text = await scrape(client)
    route = "/api/v1/book/{venue}/{symbol}"
    count = "quantsaas_http_request_duration_seconds_count"
    assert value(text, count, method="GET", route=route, status="200") == 3
    assert value(text, count, method="GET", route=route, status="404") == 1
    assert value(text, count, method="GET", route="<unmatched>", status="404") == 1
    assert "/no/such/path" not in text
    bucket = "quantsaas_http_request_duration_seconds_bucket"
    assert value(text, bucket, method="GET", route=route, status="200", le="+Inf") == 3


@pytest.mark.asyncio
async def test_livez_and_readyz(service: Service, tmp_path: Path) -> None:
    async with httpx.AsyncClient(base_url=service.http) as client:
        assert (await client.get("/livez")).json() == {"status": "ok"}
        not_ready = await client.get("/readyz")
        assert not_ready.status_code == 503
        assert not_ready.json()["checks"] == {
            "feed_live": False,
            "accounts_db": True,
            "accounts_writable": True,
        }
        service.feed.push(snapshot(service.btc, [(10_000, 5)], [(10_010, 3)]))
        await asyncio.sleep(0.05)
        ready = await client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["live_feeds"] == ["test"]
        # a recorder whose last flush failed makes the service not ready...
        blocker = tmp_path / "data"
        blocker.write_text("a file where the data directory should be")
        recorder = Recorder(RecorderConfig(blocker))
        service.app.state.recorder = recorder
        trade = Trade(service.btc, 10_000, 1, Side.BUY, "t1", now_ns(), now_ns())
        recorder.on_event(trade)
        assert recorder.flush() == 0
        failing = await client.get("/readyz")
        assert failing.status_code == 503
        assert failing.json()["checks"] == {
            "feed_live": True,
            "accounts_db": True,
            "accounts_writable": True,
            "recorder_ok": False,
        }
        # ...until a flush succeeds again (space came back): readiness follows the state
        blocker.unlink()
        recorder.on_event(trade)
        assert recorder.flush() == 1
        assert (await client.get("/readyz")).status_code == 200
        assert recorder.health()["last_error"] is not None  # still shown, with its age


def test_two_apps_in_one_process_keep_separate_registries() -> None:
    apps = []
    for venue in ("one", "two"):
        feed = ScriptedFeed([make_instrument(venue=venue)], venue=venue)
        feed.stats.messages = len(venue) * 10
        apps.append(create_app(make_runtime([feed], Settings(web_dist=None))))
    first, second = (app.state.metrics.render().decode() for app in apps)
    assert value(first, "quantsaas_feed_messages_received_total", venue="one") == 30
    assert ("quantsaas_feed_messages_received_total", (("venue", "two"),)) not in samples(first)
    assert value(second, "quantsaas_feed_messages_received_total", venue="two") == 30


@pytest.mark.asyncio
async def test_a_revocation_the_database_refuses_is_refused_at_once_and_not_ready(
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/accounts.db"
    async with secured_service(tmp_path, url) as service:
        key = await service.user_key("k@example.com", "pro")
        async with service.client(headers={"X-API-Key": key}) as http:
            (listed,) = (await http.get("/api/v1/keys")).json()["data"]
            await refuse_writes(service.accounts._engine, "account_changes")
            try:
                revoked = await http.delete(f"/api/v1/keys/{listed['key_id']}")
                assert revoked.status_code == 503
                assert revoked.json()["code"] == "revocation-pending"
                assert (await http.get("/api/v1/account")).status_code == 401  # at once
                readyz = (await http.get("/readyz")).json()
                assert readyz["checks"]["accounts_writable"] is False
                text = await scrape(http)
                assert value(text, "quantsaas_accounts_unwritten_revocations") == 1
            finally:
                await accept_writes(service.accounts._engine, "account_changes")
            for _ in range(50):  # the service retries every second
                if (await http.get("/readyz")).json()["checks"]["accounts_writable"]:
                    break
                await asyncio.sleep(0.1)
            assert (await http.get("/readyz")).json()["checks"]["accounts_writable"] is True
            assert (await http.get("/api/v1/account")).status_code == 401
