"""One error type per failure, against a closed `quantsaas serve` (no anonymous access) with
real accounts: missing, wrong and revoked keys, a spent request budget, a symbol outside the
tier; and a paced client that a strict tier does not close for flooding."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from client_server import Closed, closed_serving
from quantsaas.client import (
    AsyncClient,
    AuthError,
    BadRequest,
    Gap,
    NotFound,
    NotReady,
    RateLimited,
    ServerGone,
    TierRequired,
    UnknownSymbol,
)
from quantsaas.client.errors import problem_error, stream_error
from quantsaas.model import BookSnapshot


@pytest.fixture(scope="module")
def closed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Closed]:
    with closed_serving(tmp_path_factory.mktemp("client-closed")) as running:
        yield running


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "key", [None, "qs_AAAAAAAAAAAA_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"]
)
async def test_no_or_wrong_key_is_an_auth_error(
    closed: Closed, key: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("QUANTSAAS_API_KEY", raising=False)
    async with AsyncClient(closed.server.base, key) as client:
        with pytest.raises(AuthError):
            async for _ in client.trades("BTC/USD", venue="sim"):
                pass
        with pytest.raises(AuthError):
            await client.fetch_book("BTC/USD", "sim")


@pytest.mark.asyncio
async def test_the_key_comes_from_the_environment(
    closed: Closed, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QUANTSAAS_API_KEY", closed.keys["pro"])
    async with AsyncClient(closed.server.base) as client:
        book = await client.fetch_book("BTC/USD", "sim")
        assert book.bids and book.asks


@pytest.mark.asyncio
async def test_a_key_revoked_mid_stream_ends_the_stream_with_an_auth_error(
    closed: Closed,
) -> None:
    key = closed.keys["revoked"]
    async with AsyncClient(closed.server.base, key) as client:
        received: list[Any] = []

        async def follow() -> None:
            async for trade in client.trades("BTC/USD", venue="sim"):
                received.append(trade)

        job = asyncio.create_task(follow())
        await asyncio.sleep(1.5)
        assert received and not job.done()
        revoked = httpx.delete(
            f"{closed.server.base}/api/v1/keys/{closed.key_ids['revoked']}",
            headers={"X-API-Key": key},
        )
        assert revoked.status_code == 204
        started = time.monotonic()
        with pytest.raises(AuthError):
            await asyncio.wait_for(job, 15)
        assert time.monotonic() - started < 10
        assert client.stats.reconnects == 0  # closed for good, not retried
        with pytest.raises(AuthError):
            await client.fetch_book("BTC/USD", "sim")


@pytest.mark.asyncio
async def test_a_spent_budget_raises_rate_limited_with_the_servers_retry_time(
    closed: Closed,
) -> None:
    async with AsyncClient(closed.server.base, closed.keys["tiny"]) as client:
        with pytest.raises(RateLimited) as refused:
            for _ in range(20):
                await client.fetch_book("BTC/USD", "sim", depth=5)
    headers = httpx.get(
        f"{closed.server.base}/api/v1/book/sim/BTC-USD", headers={"X-API-Key": closed.keys["tiny"]}
    ).headers
    assert refused.value.retry_after is not None
    assert 1 <= refused.value.retry_after <= 60
    assert abs(refused.value.retry_after - float(headers["retry-after"])) <= 2


@pytest.mark.asyncio
async def test_outside_the_tier_is_tier_required(closed: Closed) -> None:
    async with AsyncClient(closed.server.base, closed.keys["free"]) as client:
        with pytest.raises(TierRequired):
            async for _ in client.trades("ETH/USD", venue="sim"):
                pass
        with pytest.raises(TierRequired):
            async for _ in client.ofi("BTC/USD", venue="sim"):
                pass
        with pytest.raises(TierRequired):
            await client.fetch_book("ETH/USD", "sim")
        with pytest.raises(UnknownSymbol):
            await client.fetch_book("NOPE/USD", "sim")


@pytest.mark.asyncio
async def test_a_strict_tier_gets_paced_requests_and_sampled_books_without_gaps(
    closed: Closed,
) -> None:
    """Free: 5 inbound messages/s and a book snapshot every 300 ms instead of deltas. Eight
    iterators subscribe at once on one connection: paced, none is refused or closed."""
    async with AsyncClient(closed.server.base, closed.keys["free"], stall_s=10) as client:
        items: list[list[Any]] = [[] for _ in range(8)]

        async def follow(n: int) -> None:
            channel = ("trades", "ticker", "book", "candles")[n % 4]
            stream = (
                client.book("BTC/USD") if channel == "book" else client.stream([channel], "BTC/USD")
            )
            async for item in stream:
                items[n].append(item)

        jobs = [asyncio.create_task(follow(n)) for n in range(8)]
        await asyncio.sleep(5)
        for job in jobs:
            assert not job.done(), job
            job.cancel()
        assert client.stats.reconnects == 0 and client.stats.gaps == 0
        assert all(items), [len(i) for i in items]
        books = [b for b in items[2] if isinstance(b, BookSnapshot)]
        assert len(books) >= 5 and not [b for b in items[2] if isinstance(b, Gap)]


def test_problem_documents_map_to_one_error_each() -> None:
    def problem(status: int, code: str) -> dict[str, Any]:
        return {"type": f"/problems/{code}", "status": status, "code": code, "detail": "x" * 500}

    cases = {
        (401, "key-invalid"): AuthError,
        (403, "tier-required"): TierRequired,
        (403, "admin-required"): AuthError,
        (404, "unknown-instrument"): UnknownSymbol,
        (404, "not-found"): NotFound,
        (400, "range-too-large"): BadRequest,
        (422, "validation-error"): BadRequest,
        (503, "service-unavailable"): ServerGone,
        (503, "book-not-ready"): NotReady,
    }
    for (status, code), kind in cases.items():
        error = problem_error(status, problem(status, code), {})
        assert type(error) is kind and len(str(error)) < 160  # the detail quoted, ~100 chars
    limited = problem_error(429, problem(429, "rate-limited"), {"retry-after": "7"})
    assert isinstance(limited, RateLimited) and limited.retry_after == 7.0
    assert problem_error(502, "<html>bad gateway</html>", {}).__class__ is ServerGone
    assert type(stream_error({"code": "unknown_symbol", "message": "no"})) is UnknownSymbol
    assert type(stream_error({"code": "key-invalid", "status": 401})) is AuthError
    assert type(stream_error({"code": "tier_required", "message": "no"})) is TierRequired
