"""Open WebSockets do not outlive their credentials: logout, a password change and a tier change
reach every socket of that user in every process (two services on one accounts database), and
a ticket dies with the session it was minted under. SQLite + memory, PostgreSQL + Redis."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from helpers import PostgresServer
from quantsaas.api.auth import CLOSE_REVOKED, CLOSE_SESSION_ENDED, CLOSE_TIER_CHANGED
from secured import PASSWORD, Secured, secured_service

NEW_PASSWORD = "an entirely new passphrase"


@pytest_asyncio.fixture(params=["sqlite+memory", "postgres+redis"])
async def two(
    request: pytest.FixtureRequest, tmp_path: Path, redis_url: str
) -> AsyncIterator[tuple[Secured, Secured]]:
    """Two API processes on one accounts database (and one limiter)."""
    if request.param == "sqlite+memory":
        url, bus = f"sqlite+aiosqlite:///{tmp_path}/accounts.db", "memory"
    else:
        postgres: PostgresServer = request.getfixturevalue("postgres")
        url, bus = postgres.create_database(), redis_url
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    async with (
        secured_service(tmp_path / "a", url, bus) as first,
        secured_service(tmp_path / "b", url, bus) as second,
    ):
        yield first, second


@contextlib.asynccontextmanager
async def signed_in(
    service: Secured, email: str, password: str = PASSWORD
) -> AsyncIterator[httpx.AsyncClient]:
    async with service.client() as http:
        answer = await http.post("/api/v1/auth/login", json={"email": email, "password": password})
        assert answer.status_code == 200, answer.text
        yield http


async def ticket(http: httpx.AsyncClient) -> str:
    answer = await http.post("/api/v1/ws-ticket")
    assert answer.status_code == 200, answer.text
    text: str = answer.json()["ticket"]
    return text


async def stream(service: Secured, **kwargs: Any) -> ClientConnection:
    ws = await websockets.connect(service.ws, **kwargs)
    first = json.loads(await asyncio.wait_for(ws.recv(), 5))
    assert first["type"] == "info", first
    return ws


async def close_code(ws: ClientConnection, timeout: float = 5.0) -> int | None:
    """Read until the server closes the socket; its close code (None: still open)."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                await ws.recv()
    except ConnectionClosed as closed:
        return None if closed.rcvd is None else closed.rcvd.code
    except TimeoutError:
        return None


def unique() -> str:
    return f"s{uuid.uuid4().hex[:10]}@example.com"


@pytest.mark.asyncio
async def test_logout_closes_that_sessions_sockets_everywhere_and_kills_its_tickets(
    two: tuple[Secured, Secured],
) -> None:
    a, b = two
    email = unique()
    await a.accounts.add_user(email, PASSWORD, tier="pro")
    async with signed_in(a, email) as session, signed_in(b, email) as other_session:
        on_a = await websockets.connect(f"{a.ws}?ticket={await ticket(session)}")
        on_b = await websockets.connect(f"{b.ws}?ticket={await ticket(session)}")
        kept = await websockets.connect(f"{b.ws}?ticket={await ticket(other_session)}")
        unused = await ticket(session)
        for ws in (on_a, on_b, kept):
            assert json.loads(await ws.recv())["type"] == "info"
        assert (await session.post("/api/v1/auth/logout")).status_code == 204
        assert await close_code(on_a) == CLOSE_SESSION_ENDED  # this process: at once
        assert await close_code(on_b) == CLOSE_SESSION_ENDED  # the other: within a poll
        assert await close_code(kept, timeout=1.5) is None  # another session is untouched
        late = await websockets.connect(f"{b.ws}?ticket={unused}")
        assert await close_code(late) == 4401  # a ticket minted before the logout is dead
        await kept.close()


@pytest.mark.asyncio
async def test_a_password_change_closes_every_session_socket_but_not_key_sockets(
    two: tuple[Secured, Secured],
) -> None:
    a, b = two
    email = unique()
    user = await a.accounts.add_user(email, PASSWORD, tier="pro")
    key, _ = await a.accounts.create_key(user.id, "bot")
    async with signed_in(a, email) as changer, signed_in(b, email) as elsewhere:
        mine = await websockets.connect(f"{a.ws}?ticket={await ticket(changer)}")
        theirs = await websockets.connect(f"{b.ws}?ticket={await ticket(elsewhere)}")
        bot = await stream(b, additional_headers={"X-API-Key": key})
        for ws in (mine, theirs):
            assert json.loads(await ws.recv())["type"] == "info"
        changed = await changer.post(
            "/api/v1/account/password",
            json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        )
        assert changed.status_code == 204
        assert await close_code(theirs) == CLOSE_SESSION_ENDED
        assert await close_code(mine) == CLOSE_SESSION_ENDED
        assert await close_code(bot, timeout=1.5) is None  # keys stay valid
        assert (await elsewhere.get("/api/v1/account")).status_code == 401
        await bot.close()


@pytest.mark.asyncio
async def test_a_tier_change_restarts_the_users_sockets_under_the_new_tier(
    two: tuple[Secured, Secured],
) -> None:
    a, b = two
    email = unique()
    user = await a.accounts.add_user(email, PASSWORD, tier="pro")
    key, _ = await a.accounts.create_key(user.id, "bot")
    ws = await stream(b, additional_headers={"X-API-Key": key})
    await ws.send(json.dumps({"op": "subscribe", "channels": ["trades"], "symbols": ["SOL/USD"]}))
    assert json.loads(await ws.recv())["type"] == "subscribed"  # pro includes SOL
    await a.accounts.set_tier(email, "free")  # as `quantsaas users set-tier` does
    assert await close_code(ws) == CLOSE_TIER_CHANGED
    again = await stream(b, additional_headers={"X-API-Key": key})
    await again.send(
        json.dumps({"op": "subscribe", "channels": ["trades"], "symbols": ["SOL/USD"]})
    )
    answer = json.loads(await again.recv())
    assert answer["type"] == "error" and answer["code"] == "tier_required"
    await again.close()


@pytest.mark.asyncio
async def test_revoking_a_key_still_closes_with_4001(two: tuple[Secured, Secured]) -> None:
    a, b = two
    user = await a.accounts.add_user(unique(), PASSWORD, tier="pro")
    key, view = await a.accounts.create_key(user.id, "bot")
    ws = await stream(b, additional_headers={"X-API-Key": key})
    await a.accounts.revoke_key(view.key_id, user.id)
    assert await close_code(ws) == CLOSE_REVOKED
