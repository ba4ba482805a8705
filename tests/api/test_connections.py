"""The per-user WebSocket connection limit holds across API processes sharing one Redis."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import websockets
from redis.asyncio import Redis
from test_auth import closed_with, receive

from helpers import PostgresServer
from quantsaas.api.connections import PREFIX, RedisConnections
from secured import secured_service


@pytest.mark.asyncio
async def test_two_processes_share_one_connection_limit(
    tmp_path: Path, redis_url: str, postgres: PostgresServer
) -> None:
    accounts = postgres.create_database()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    async with (
        secured_service(tmp_path / "a", accounts, redis_url) as first,
        secured_service(tmp_path / "b", accounts, redis_url) as second,
    ):
        key = await first.user_key("one-socket@example.com", "free")  # free: 1 connection
        headers = {"X-API-Key": key}
        held = await websockets.connect(first.ws, additional_headers=headers)
        assert (await receive(held))["type"] == "info"
        refused = await websockets.connect(second.ws, additional_headers=headers)
        code, seen = await closed_with(refused)
        assert code == 4429 and seen[0]["code"] == "too-many-connections"
        await held.close()
        for _ in range(50):  # the place is released when the first socket's session ends
            again = await websockets.connect(second.ws, additional_headers=headers)
            message = await receive(again)
            if message["type"] == "info":
                break
            await again.close()
            await asyncio.sleep(0.1)
        assert message["type"] == "info"
        await again.close()


@pytest.mark.asyncio
async def test_places_of_a_vanished_process_expire(redis_url: str) -> None:
    dead = RedisConnections(redis_url, ttl_s=0.3)
    alive = RedisConnections(redis_url, ttl_s=0.3)
    owner = "user:expiry-test"
    try:
        assert await dead.admit(owner, "dead:1", 1)
        assert not await alive.admit(owner, "alive:1", 1)
        await asyncio.sleep(0.5)  # the dead process never refreshed nor released its place
        assert await alive.admit(owner, "alive:1", 1)
        await alive.refresh([(owner, "alive:1")])
        assert not await dead.admit(owner, "dead:2", 1)
        await alive.release(owner, "alive:1")
        assert await dead.admit(owner, "dead:2", 1)
    finally:
        cleanup = Redis.from_url(redis_url)
        await cleanup.delete(PREFIX + owner)
        await cleanup.aclose()
        await dead.close()
        await alive.close()
