"""Auth on every route and on /ws: 401 without or with a bad key, 403 outside the tier, revocation
at once, 429 with its headers. Runs on SQLite + the memory limiter and on PostgreSQL + Redis."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from helpers import (
    PostgresServer,
    RedisServer,
    ScriptedFeed,
    delta,
    make_instrument,
    make_runtime,
    served_as_cli,
    snapshot,
    trade,
)
from quantsaas.accounts.service import Accounts
from quantsaas.accounts.tiers import load_tiers
from quantsaas.api.access import access_for
from quantsaas.api.app import create_app
from quantsaas.api.auth import Guard
from quantsaas.api.public_market import DelayedMarket
from quantsaas.config import Settings
from quantsaas.model import now_ns
from secured import PASSWORD, TEST_TIERS, Secured, secured_service

PATH_VALUES = {
    "venue": "test",
    "symbol": "BTC-USD",
    "currency": "BTC",
    "key_id": "nokey",
    "backtest_id": "20240101T000000-00000000",
}


@pytest_asyncio.fixture(params=["sqlite+memory", "postgres+redis"])
async def secured(
    request: pytest.FixtureRequest, tmp_path: Path, redis_url: str
) -> AsyncIterator[Secured]:
    if request.param == "sqlite+memory":
        url, bus = f"sqlite+aiosqlite:///{tmp_path}/accounts.db", "memory"
    else:
        postgres: PostgresServer = request.getfixturevalue("postgres")
        url, bus = postgres.create_database(), redis_url
    async with secured_service(tmp_path, url, bus) as service:
        yield service


def data_routes(service: Secured) -> list[str]:
    """Every HTTP route that needs credentials, with its path filled in."""
    schema = service.app.openapi()["paths"]
    return sorted(
        path.format(**PATH_VALUES)
        for path, operations in schema.items()
        if not access_for(path).public and "get" in operations
    )


async def ws_connect(service: Secured, **kwargs: Any) -> ClientConnection:
    return await websockets.connect(service.ws, **kwargs)


async def receive(ws: ClientConnection, timeout: float = 3.0) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), timeout))
    return message


async def closed_with(ws: ClientConnection, timeout: float = 5.0) -> tuple[int | None, list[Any]]:
    """Read until the server closes; its close code and what came before."""
    seen: list[Any] = []
    try:
        while True:
            seen.append(await receive(ws, timeout))
    except ConnectionClosed as closed:
        return (None if closed.rcvd is None else closed.rcvd.code), seen


@pytest.mark.asyncio
async def test_every_data_route_wants_credentials(secured: Secured) -> None:
    routes = data_routes(secured)
    assert "/api/v1/book/test/BTC-USD" in routes and len(routes) >= 15
    async with secured.client() as http:
        for path in routes:
            answer = await http.get(path)
            assert answer.status_code == 401, path
            assert answer.headers["content-type"] == "application/problem+json", path
            assert answer.json()["code"] == "credentials-required", path
        for key in ("qs_nope_nope", "garbage", ""):
            answer = await http.get("/api/v1/trades/test/BTC-USD", headers={"X-API-Key": key})
            assert answer.status_code == 401, key
        bearer = await http.get(
            "/api/v1/trades/test/BTC-USD", headers={"Authorization": "Bearer qs_abc_def"}
        )
        assert bearer.status_code == 401 and bearer.json()["code"] == "key-invalid"


@pytest.mark.asyncio
async def test_public_routes_answer_without_credentials(secured: Secured) -> None:
    async with secured.client() as http:
        for path in ("/", "/livez", "/docs", "/openapi.json", "/api/v1/instruments"):
            assert (await http.get(path)).status_code == 200, path
        health = await http.get("/health")  # 503 while the scripted feed is not live
        assert health.status_code in (200, 503) and "feeds" in health.json()
        market = await http.get("/api/market_data")
    assert market.status_code == 200
    assert market.json()["delay_s"] == 60.0
    assert market.json()["data"] == []  # nothing is a minute old yet


@pytest.mark.asyncio
async def test_keys_reach_what_their_tier_includes_and_nothing_else(secured: Secured) -> None:
    free = await secured.user_key("free@example.com", "free")
    pro = await secured.user_key("pro@example.com", "pro")
    secured.feed.push(snapshot(secured.instruments["SOL"], [(100, 1)], [(101, 1)]))
    secured.feed.push(snapshot(secured.instruments["BTC"], [(100, 1)], [(101, 1)]))
    await asyncio.sleep(0.05)
    async with secured.client() as http:
        as_free = {"X-API-Key": free}
        ok = await http.get("/api/v1/book/test/BTC-USD", headers=as_free)
        assert ok.status_code == 200 and ok.json()["bids"] == [["1.00", "0.00000001"]]
        # the tier is checked on what a name resolves to: native `BTCUSD` is BTC/USD
        native = await http.get("/api/v1/book/test/btcusd", headers=as_free)
        assert native.status_code == 200 and native.json()["symbol"] == "BTC/USD"
        paths = ("/api/v1/analytics/ofi/test/BTC-USD", "/api/v1/book/test/SOL-USD")
        for path in (*paths, "/api/v1/book/test/SOLUSD"):
            denied = await http.get(path, headers=as_free)
            assert denied.status_code == 403, path
            assert denied.json()["code"] == "tier-required", path
        market = await http.get("/api/market_data", headers=as_free)
        assert {row["symbol"] for row in market.json()["data"]} == {"BTC/USD", "ETH/USD"}
        assert market.json()["delay_s"] == 0
        as_pro = {"Authorization": f"Bearer {pro}"}
        for path in ("/api/v1/analytics/ofi/test/BTC-USD", "/api/v1/book/test/SOL-USD"):
            assert (await http.get(path, headers=as_pro)).status_code == 200, path
        admin_only = await http.get("/api/v1/admin/audit", headers=as_pro)
        assert admin_only.status_code == 403 and admin_only.json()["code"] == "admin-required"


@pytest.mark.asyncio
async def test_a_revoked_key_is_refused_at_once_and_its_socket_closed(secured: Secured) -> None:
    key = await secured.user_key("trader@example.com", "pro")
    headers = {"X-API-Key": key}
    async with secured.client() as http:
        keys = (await http.get("/api/v1/keys", headers=headers)).json()["data"]
        assert len(keys) == 1 and "key" not in keys[0] and "digest" not in keys[0]
        ws = await ws_connect(secured, additional_headers=headers)
        assert (await receive(ws))["type"] == "info"
        await ws.send(
            json.dumps({"op": "subscribe", "channels": ["trades"], "symbols": ["BTC/USD"]})
        )
        assert (await receive(ws))["type"] == "subscribed"
        revoked = await http.delete(f"/api/v1/keys/{keys[0]['key_id']}", headers=headers)
        assert revoked.status_code == 204
        code, _ = await closed_with(ws)
        assert code == 4001
        again = await http.get("/api/v1/trades/test/BTC-USD", headers=headers)
        assert again.status_code == 401 and again.json()["code"] == "key-invalid"


@pytest.mark.asyncio
async def test_a_key_revoked_by_another_process_closes_the_socket(secured: Secured) -> None:
    key = await secured.user_key("remote@example.com", "pro")
    ws = await ws_connect(secured, additional_headers={"X-API-Key": key})
    assert (await receive(ws))["type"] == "info"
    # a second Accounts on the same database: what the admin CLI or another API process is
    other = await Accounts.open(
        secured.settings.accounts_url, load_tiers(secured.settings.tiers_file)
    )
    try:
        user = next(u for u in await other.list_users() if u.email == "remote@example.com")
        [listed] = await other.list_keys(user.id)
        await other.revoke_key(listed.key_id, None)
    finally:
        await other.close()
    code, _ = await closed_with(ws, timeout=10)
    assert code == 4001
    async with secured.client() as http:
        answer = await http.get("/api/v1/trades/test/BTC-USD", headers={"X-API-Key": key})
    assert answer.status_code == 401


@pytest.mark.asyncio
async def test_over_the_limit_is_a_429_with_retry_after_and_ratelimit_headers(
    secured: Secured,
) -> None:
    key = await secured.user_key("tiny@example.com", "tiny")
    headers = {"X-API-Key": key}
    async with secured.client() as http:
        first = await http.get("/api/v1/trades/test/BTC-USD", headers=headers)
        assert first.status_code == 200
        assert first.headers["RateLimit-Policy"] == '"tiny";q=6;w=60'
        assert first.headers["RateLimit"].startswith('"tiny";r=5;t=')
        assert first.headers["X-RateLimit-Remaining"] == "5"
        book = await http.get("/api/v1/book/test/BTC-USD", headers=headers)  # weight 4
        assert book.headers["X-RateLimit-Remaining"] == "1"
        assert (await http.get("/api/v1/trades/test/BTC-USD", headers=headers)).status_code == 200
        refused = await http.get("/api/v1/trades/test/BTC-USD", headers=headers)
        metrics = (await http.get("/metrics")).text
    assert 'quantsaas_rate_limited_total{quota="tiny"} 1.0' in metrics
    assert 'quantsaas_requests_denied_total{code="rate-limited",status="429"} 1.0' in metrics
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == "rate-limited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 10  # one unit back after 60/6 = 10 s
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert "RateLimit-Policy" in refused.headers


@pytest.mark.asyncio
async def test_websocket_handshakes_without_valid_credentials_are_refused(
    secured: Secured,
) -> None:
    for kwargs, code, reason in (
        ({}, 4401, "credentials-required"),
        ({"additional_headers": {"X-API-Key": "qs_bad_key"}}, 4401, "key-invalid"),
        ({"additional_headers": {}, "open_timeout": 5}, 4401, "credentials-required"),
    ):
        ws = await ws_connect(secured, **kwargs)
        closed, seen = await closed_with(ws)
        assert closed == code and seen[0]["code"] == reason
    key = await secured.user_key("browser@example.com", "pro")
    ws = await ws_connect(
        secured, additional_headers={"X-API-Key": key}, origin="https://evil.example"
    )
    closed, seen = await closed_with(ws)
    assert closed == 4403 and seen[0]["code"] == "origin-not-allowed"


@pytest.mark.asyncio
async def test_dashboard_session_mints_single_use_tickets(secured: Secured) -> None:
    await secured.accounts.add_user("dash@example.com", PASSWORD, tier="pro")
    async with secured.client() as http:
        login = await http.post(
            "/api/v1/auth/login", json={"email": "dash@example.com", "password": PASSWORD}
        )
        assert login.status_code == 200
        cookie = login.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        assert (await http.get("/api/v1/limits")).json()["tier"] == "pro"
        ticket = (await http.post("/api/v1/ws-ticket")).json()["ticket"]
        origin = secured.http
        ws = await websockets.connect(f"{secured.ws}?ticket={ticket}", origin=origin)  # type: ignore[arg-type]
        assert (await receive(ws))["type"] == "info"
        await ws.close()
        reused = await websockets.connect(f"{secured.ws}?ticket={ticket}")
        code, seen = await closed_with(reused)
        assert code == 4401 and seen[0]["code"] == "ticket-invalid"
        assert (await http.post("/api/v1/auth/logout")).status_code == 204
        after = await http.get("/api/v1/limits")
        assert after.status_code == 401


@pytest.mark.asyncio
async def test_free_tier_stream_limits(secured: Secured) -> None:
    key = await secured.user_key("small@example.com", "free")
    headers = {"X-API-Key": key}
    btc = secured.instruments["BTC"]
    secured.feed.push(snapshot(btc, [(100, 1)], [(200, 1)]))
    ws = await ws_connect(secured, additional_headers=headers)
    assert (await receive(ws))["type"] == "info"
    second = await ws_connect(secured, additional_headers=headers)
    code, seen = await closed_with(second)
    assert code == 4429 and seen[0]["code"] == "too-many-connections"
    await ws.send(json.dumps({"op": "subscribe", "channels": ["ofi"], "symbols": ["BTC/USD"]}))
    assert (await receive(ws))["code"] == "tier_required"
    await ws.send(json.dumps({"op": "subscribe", "channels": ["book"], "symbols": ["SOL/USD"]}))
    assert (await receive(ws))["code"] == "tier_required"
    await ws.send(json.dumps({"op": "subscribe", "channels": ["book"], "symbols": ["BTC/USD"]}))
    assert (await receive(ws))["type"] == "subscribed"
    assert (await receive(ws))["type"] == "snapshot"
    # 300 ms sampling: a stream of deltas arrives as an occasional snapshot, never as deltas
    for sequence in range(2, 60):
        secured.feed.push(delta(btc, [(100, sequence)], [], sequence))
        await asyncio.sleep(0.02)
    got = []
    with pytest.raises(TimeoutError):
        while True:
            got.append(await receive(ws, timeout=0.5))
    assert got and all(m["type"] == "snapshot" for m in got)
    assert 2 <= len(got) <= 6  # ~1.2 s of deltas at one snapshot per 300 ms
    assert got[-1]["data"]["bids"][0][1] == "0.00000059"
    await ws.close()


@pytest.mark.asyncio
async def test_inbound_message_rate_follows_the_tier(secured: Secured) -> None:
    key = await secured.user_key("chatty@example.com", "free")
    ws = await ws_connect(secured, additional_headers={"X-API-Key": key})
    assert (await receive(ws))["type"] == "info"
    for _ in range(8):  # the free test tier allows 5 per second
        await ws.send(json.dumps({"op": "ping"}))
    code, _ = await closed_with(ws)
    assert code == 1008


@pytest.mark.asyncio
async def test_accounts_over_http_and_the_audit_trail(secured: Secured) -> None:
    admin = await secured.user_key("root@example.com", "pro", admin=True)
    async with secured.client() as http:
        signup = await http.post(
            "/api/v1/auth/signup", json={"email": "New@Example.com", "password": PASSWORD}
        )
        assert signup.status_code == 201 and signup.json()["tier"] == "free"
        assert signup.json()["email"] == "new@example.com"
        created = await http.post("/api/v1/keys", json={"name": "bot"})
        assert created.status_code == 201 and created.json()["key"].startswith("qs_")
        whoami = await http.get("/api/v1/account", headers={"X-API-Key": created.json()["key"]})
        assert whoami.json()["user"]["email"] == "new@example.com"
        assert whoami.json()["authenticated_by"] == "key"
        assert (await http.post("/api/v1/keys", json={"name": "b2"})).status_code == 201
        third = await http.post("/api/v1/keys", json={"name": "b3"})
        assert third.status_code == 403 and third.json()["code"] == "key-limit"
        dup = await http.post(
            "/api/v1/auth/signup", json={"email": "new@example.com", "password": PASSWORD}
        )
        assert dup.status_code == 409
        weak = await http.post("/api/v1/auth/signup", json={"email": "w@x.io", "password": "short"})
        assert weak.status_code == 422
        wrong = await http.post(
            "/api/v1/auth/login", json={"email": "new@example.com", "password": "not it at all"}
        )
        assert wrong.status_code == 401 and wrong.json()["code"] == "login-failed"
        # someone else's key is not found, not forbidden: no oracle for other users' key ids
        mine = created.json()["key_id"]
        other = await http.delete(f"/api/v1/keys/{mine}", headers={"X-API-Key": admin})
        assert other.status_code == 404
    async with secured.client() as anonymous:
        await anonymous.get("/api/v1/trades/test/BTC-USD")  # denied: no credentials
    async with secured.client() as http:
        audit = await http.get("/api/v1/admin/audit", headers={"X-API-Key": admin})
    events = {event["event"] for event in audit.json()["data"]}
    assert {"user.signup", "key.created", "user.login_failed", "request.denied"} <= events


@pytest.mark.asyncio
async def test_login_is_throttled_per_account(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/accounts.db"
    async with secured_service(tmp_path, url) as service:
        await service.accounts.add_user("victim@example.com", PASSWORD, tier="free")
        async with service.client() as http:
            statuses = [
                (
                    await http.post(
                        "/api/v1/auth/login",
                        json={"email": "victim@example.com", "password": f"guess {n}"},
                    )
                ).status_code
                for n in range(6)
            ]
            right = await http.post(
                "/api/v1/auth/login", json={"email": "victim@example.com", "password": PASSWORD}
            )
    assert statuses == [401] * 5 + [429]
    assert right.status_code == 429 and int(right.headers["Retry-After"]) >= 1


@pytest.mark.asyncio
async def test_login_and_signup_are_throttled_per_ip(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/accounts.db"
    async with secured_service(tmp_path, url, login_attempts=4) as service:
        async with service.client() as http:
            statuses = [
                (
                    await http.post(
                        "/api/v1/auth/login", json={"email": f"u{n}@x.io", "password": "whatever"}
                    )
                ).status_code
                for n in range(6)
            ]
    assert statuses == [401] * 4 + [429] * 2


@pytest.mark.asyncio
async def test_secrets_never_reach_the_logs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    url = f"sqlite+aiosqlite:///{tmp_path}/accounts.db"
    async with secured_service(tmp_path, url) as service:
        key = await service.user_key("quiet@example.com", "pro")
        async with service.client() as http:
            await http.get("/api/v1/trades/test/BTC-USD", headers={"X-API-Key": key})
            await http.get("/api/v1/trades/test/BTC-USD", headers={"X-API-Key": key + "x"})
            login = await http.post(
                "/api/v1/auth/login", json={"email": "quiet@example.com", "password": PASSWORD}
            )
            session = login.cookies["qs_session"]
            ticket = (await http.post("/api/v1/ws-ticket")).json()["ticket"]
            ws = await websockets.connect(f"{service.ws}?ticket={ticket}")
            await ws.close()
    client_side = ("websockets.client", "httpx", "httpcore")  # the test's own clients
    text = "\n".join(
        f"{record.getMessage()} {record.__dict__}"
        for record in caplog.records
        if not record.name.startswith(client_side)
    )
    for number, secret in enumerate((key, key + "x", PASSWORD, session, ticket)):
        found = text.find(secret)
        assert found < 0, (number, text[max(0, found - 300) : found + 50])
    assert "denied" in text  # the bad key was logged as a denial, without any secret


@pytest.mark.asyncio
async def test_market_data_is_delayed_for_the_public(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/accounts.db"
    async with secured_service(tmp_path, url, public_market_data_delay_s=30.0) as service:
        btc = service.instruments["BTC"]
        delayed: DelayedMarket = service.app.state.delayed_market
        service.feed.push(snapshot(btc, [(100, 1)], [(200, 1)]))
        service.feed.push(trade(btc, 150, 1, "t1", 1))
        await asyncio.sleep(0.05)
        delayed.sample(at_ns=now_ns() - 40 * 10**9)  # as if sampled 40 s ago
        service.feed.push(trade(btc, 170, 1, "t2", 2))
        await asyncio.sleep(0.05)
        key = await service.user_key("live@example.com", "pro")
        async with service.client() as http:
            public = await http.get("/api/market_data", params={"symbols": "BTC/USD"})
            live = await http.get(
                "/api/market_data", params={"symbols": "BTC/USD"}, headers={"X-API-Key": key}
            )
    assert public.json()["delay_s"] == 30.0 and public.json()["data"][0]["last"] == "1.50"
    assert live.json()["delay_s"] == 0 and live.json()["data"][0]["last"] == "1.70"


@pytest.mark.asyncio
async def test_subscriptions_per_connection_follow_the_tier(secured: Secured) -> None:
    key = await secured.user_key("many@example.com", "free")
    ws = await ws_connect(secured, additional_headers={"X-API-Key": key})
    assert (await receive(ws))["type"] == "info"
    four = {"op": "subscribe", "channels": ["trades", "ticker"], "symbols": ["BTC/USD", "ETH/USD"]}
    await ws.send(json.dumps(four))
    assert (await receive(ws))["type"] == "subscribed"
    await ws.send(json.dumps({"op": "subscribe", "channels": ["book"], "symbols": ["BTC/USD"]}))
    refused = await receive(ws)
    assert refused["type"] == "error" and refused["code"] == "too_many_subscriptions"
    await ws.close()


@pytest.mark.asyncio
async def test_without_its_redis_the_limiter_fails_closed_and_recovers(tmp_path: Path) -> None:
    redis = RedisServer(tmp_path)
    redis.start()
    url = f"sqlite+aiosqlite:///{tmp_path}/accounts.db"
    try:
        async with secured_service(tmp_path, url, redis.url) as service:
            key = await service.user_key("steady@example.com", "pro")
            headers = {"X-API-Key": key}
            async with service.client() as http:
                assert (await http.get("/api/v1/instruments", headers=headers)).status_code == 200
                redis.stop()
                down = await http.get("/api/v1/trades/test/BTC-USD", headers=headers)
                assert down.status_code == 503 and down.headers["Retry-After"] == "1"
                assert down.json()["code"] == "service-unavailable"
                assert (await http.get("/livez")).status_code == 200  # probes are not limited
                redis.start()
                await asyncio.sleep(0.2)
                back = await http.get("/api/v1/trades/test/BTC-USD", headers=headers)
                assert back.status_code == 200
    finally:
        redis.stop()


@pytest.mark.asyncio
async def test_a_subscription_partly_outside_the_tier_gets_the_included_part(
    secured: Secured,
) -> None:
    key = await secured.user_key("partly@example.com", "free")
    ws = await ws_connect(secured, additional_headers={"X-API-Key": key})
    assert (await receive(ws))["type"] == "info"
    request = {
        "op": "subscribe",
        "channels": ["trades"],
        "symbols": ["BTC/USD", "SOL/USD"],
        "id": 3,
    }
    await ws.send(json.dumps(request))
    subscribed, refused = await receive(ws), await receive(ws)
    assert subscribed == {"type": "subscribed", "streams": [["trades", "test", "BTC/USD"]], "id": 3}
    assert refused["code"] == "tier_required" and refused["id"] == 3
    assert refused["streams"] == [["trades", "test", "SOL/USD"]]
    assert (refused["channel"], refused["symbol"]) == ("trades", "SOL/USD")
    secured.feed.push(trade(secured.instruments["SOL"], 100, 1, "s1", 1))
    secured.feed.push(trade(secured.instruments["BTC"], 100, 1, "b1", 2))
    got = await receive(ws)
    assert (got["symbol"], got["data"]["id"]) == ("BTC/USD", "b1")  # never the SOL trade
    await ws.close()


@pytest.mark.asyncio
async def test_am_i_signed_in_probes_are_not_audited_as_attacks(secured: Secured) -> None:
    async with secured.client() as http:
        for path in ("/api/v1/account", "/api/v1/limits"):
            assert (await http.get(path)).status_code == 401
        assert (await http.post("/api/v1/ws-ticket")).status_code == 401
        assert (await http.get("/api/v1/trades/test/ETH-USD")).status_code == 401
        metrics = (await http.get("/metrics")).text
    details = [event.detail for event in await secured.accounts.audit_events(50)]
    assert details == ["401 credentials-required /api/v1/trades/{venue}/{symbol}"]
    assert (
        'quantsaas_requests_denied_total{code="credentials-required",status="401"} 4.0' in metrics
    )


@pytest.mark.parametrize(
    ("trusted", "seen_ip"), [("127.0.0.1", "203.0.113.5"), ("10.9.9.9", "127.0.0.1")]
)
@pytest.mark.asyncio
async def test_the_client_ip_comes_from_trusted_proxies_only(
    tmp_path: Path, trusted: str, seen_ip: str
) -> None:
    """`serve`'s uvicorn config: X-Forwarded-For counts only from `forwarded_allow_ips`."""
    tiers = tmp_path / "tiers.toml"
    tiers.write_text(TEST_TIERS)
    settings = Settings(
        web_dist=None,
        anonymous_tier=None,
        accounts_url=f"sqlite+aiosqlite:///{tmp_path}/accounts.db",
        tiers_file=tiers,
        bootstrap_admin=False,
        forwarded_allow_ips=trusted,
        host="127.0.0.1",
        port=0,
    )
    app = create_app(make_runtime([ScriptedFeed([make_instrument()])], settings))
    async with served_as_cli(app, settings) as address:
        async with httpx.AsyncClient(base_url=f"http://{address}") as http:
            forwarded = {"X-Forwarded-For": "203.0.113.5"}
            assert (
                await http.get("/api/v1/trades/test/BTC-USD", headers=forwarded)
            ).status_code == 401
        guard: Guard = app.state.guard
        [event] = await guard.accounts.audit_events(10)
        assert event.ip == seen_ip


@pytest.mark.asyncio
async def test_changing_the_password_ends_every_other_session(secured: Secured) -> None:
    key = await secured.user_key("mover@example.com", "pro")
    login = {"email": "mover@example.com", "password": PASSWORD}
    async with secured.client() as here, secured.client() as elsewhere:
        assert (await here.post("/api/v1/auth/login", json=login)).status_code == 200
        assert (await elsewhere.post("/api/v1/auth/login", json=login)).status_code == 200
        change = {"current_password": "not the password", "new_password": "a new long password"}
        wrong = await here.post("/api/v1/account/password", json=change)
        assert wrong.status_code == 403 and wrong.json()["code"] == "password-wrong"
        weak = {"current_password": PASSWORD, "new_password": "short"}
        assert (await here.post("/api/v1/account/password", json=weak)).status_code == 422
        change["current_password"] = PASSWORD
        changed = await here.post("/api/v1/account/password", json=change)
        assert changed.status_code == 204 and "qs_session=" in changed.headers["set-cookie"]
        assert (await here.get("/api/v1/limits")).status_code == 200  # the fresh cookie
        assert (await elsewhere.get("/api/v1/limits")).status_code == 401  # ended
        old = await elsewhere.post("/api/v1/auth/login", json=login)
        assert old.status_code == 401
        new = {"email": "mover@example.com", "password": "a new long password"}
        assert (await elsewhere.post("/api/v1/auth/login", json=new)).status_code == 200
        as_key = await here.get("/api/v1/account", headers={"X-API-Key": key})
        assert as_key.status_code == 200  # keys are not sessions: they stay valid
