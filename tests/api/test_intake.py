"""Bounds on what a client can make the server hold: credentials and the rate limit before a
route reads its body, a per-route body cap (413), bounded request heads (431/414)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from helpers import served_as_cli
from quantsaas.api.access import JSON_BODY_CAP
from quantsaas.config import Settings
from secured import Secured, secured_service

MB = 1 << 20


@pytest_asyncio.fixture
async def secured(tmp_path: Path) -> AsyncIterator[Secured]:
    async with secured_service(tmp_path, f"sqlite+aiosqlite:///{tmp_path}/accounts.db") as s:
        yield s


class CountingBody:
    """A request body of `chunks` x `size` bytes that counts how much the server pulled."""

    def __init__(self, chunks: int, size: int) -> None:
        self.chunks, self.size, self.pulled = chunks, size, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(self.chunks):
            self.pulled += self.size
            yield b"x" * self.size


def in_process(service: Secured, ip: str = "192.0.2.1") -> httpx.AsyncClient:
    """The running service's app called in process, so the test sees what the app pulls."""
    transport = httpx.ASGITransport(app=service.app, client=(ip, 1234))
    return httpx.AsyncClient(transport=transport, base_url="http://test")


@pytest.mark.asyncio
async def test_an_anonymous_50_mb_post_is_refused_before_its_body_is_read(
    secured: Secured,
) -> None:
    body = CountingBody(50, MB)
    async with in_process(secured) as http:
        answer = await http.post("/api/v1/keys", content=body)
    assert answer.status_code == 401
    assert answer.headers["content-type"] == "application/problem+json"
    assert body.pulled <= MB  # at most the first chunk, which the transport may pull itself


@pytest.mark.asyncio
async def test_unparseable_bodies_of_anonymous_callers_get_401_not_400(secured: Secured) -> None:
    async with in_process(secured) as http:
        for path in ("/api/v1/keys", "/api/v1/account/password"):
            answer = await http.post(
                path, content=b"{not json", headers={"content-type": "application/json"}
            )
            assert answer.status_code == 401, path


@pytest.mark.asyncio
async def test_a_key_holder_reads_at_most_the_cap_of_an_endless_body(secured: Secured) -> None:
    key = await secured.user_key("big@example.com", "pro")
    chunk = 1024
    body = CountingBody(50 * 1024, chunk)  # 50 MB, chunked: no Content-Length
    async with in_process(secured) as http:
        answer = await http.post("/api/v1/keys", content=body, headers={"X-API-Key": key})
        assert answer.status_code == 413
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["code"] == "payload-too-large"
        assert body.pulled <= JSON_BODY_CAP + 2 * chunk
        # a declared length over the cap is refused before a byte is read
        declared = CountingBody(50, MB)
        answer = await http.post(
            "/api/v1/keys",
            content=declared,
            headers={"X-API-Key": key, "Content-Length": str(50 * MB)},
        )
        assert answer.status_code == 413 and declared.pulled <= MB
        # and a body under the cap is served as before
        answer = await http.post(
            "/api/v1/keys", json={"name": "x" * 60}, headers={"X-API-Key": key}
        )
        assert answer.status_code == 201


async def raw_request(address: str, head: bytes, body: bytes = b"") -> bytes:
    """Send a request head (and some body) on a raw socket; what the server answers first."""
    host, port = address.rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(head + body)
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        return await asyncio.wait_for(reader.read(4096), 10)
    finally:
        writer.close()


@pytest.mark.asyncio
async def test_a_real_server_answers_a_declared_50_mb_body_without_waiting_for_it(
    secured: Secured,
) -> None:
    head = (
        b"POST /api/v1/keys HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
        b"content-length: 52428800\r\n\r\n"
    )
    answer = await raw_request(secured.address, head, b'{"name": "')
    assert answer.startswith(b"HTTP/1.1 401 ")


@contextlib.asynccontextmanager
async def bounded_server(secured: Secured) -> AsyncIterator[str]:
    """The same app behind `serve`'s uvicorn configuration (bounded request heads)."""
    settings = Settings(port=0, http_max_head_bytes=16 * 1024, http_max_url_bytes=4096)
    # the app is already running in `secured`: no second lifespan
    async with served_as_cli(secured.app, settings, lifespan=False) as address:
        yield address


@pytest.mark.asyncio
async def test_request_heads_are_bounded(secured: Secured) -> None:
    async with bounded_server(secured) as address:
        # one header of 1 MB: refused once 16 KiB have arrived, not buffered whole
        huge = b"GET /livez HTTP/1.1\r\nHost: x\r\nX-Big: " + b"v" * MB + b"\r\n\r\n"
        answer = await raw_request(address, huge)
        assert answer.startswith(b"HTTP/1.1 431 ")
        assert b"application/problem+json" in answer
        many = b"GET /livez HTTP/1.1\r\nHost: x\r\n" + b"X-A: b\r\n" * 5000 + b"\r\n"
        assert (await raw_request(address, many)).startswith(b"HTTP/1.1 431 ")
        long_url = b"GET /livez?q=" + b"a" * 8000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
        assert (await raw_request(address, long_url)).startswith(b"HTTP/1.1 414 ")
        # an ordinary request, and several on one connection, still pass
        fine = b"GET /livez HTTP/1.1\r\nHost: x\r\nX-Ok: " + b"v" * 4000 + b"\r\n\r\n"
        assert (await raw_request(address, fine * 6)).startswith(b"HTTP/1.1 200 ")
        async with httpx.AsyncClient(base_url=f"http://{address}") as http:
            for _ in range(10):
                assert (await http.get("/livez", headers={"X-Ok": "v" * 8000})).status_code == 200
