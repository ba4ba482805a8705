"""History as DataFrames from a real recording server: Parquet pages followed to the end give
every row exactly once (also where a page boundary splits trades of one instant), exact decimal
columns equal to the JSON API's text, candles the same in small pages as in one."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pandas as pd
import pytest

from client_server import Server, serving
from quantsaas.client import AsyncClient, BadRequest
from quantsaas.client.history import time_param


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with serving(tmp_path_factory.mktemp("client-history"), "--rate", "300") as running:
        time.sleep(6)  # a few seconds of trades, flushed every 0.2 s
        yield running


def json_pages(server: Server, start: int, end: int, limit: int) -> list[dict[str, Any]]:
    """Every trade through the JSON API's own `next` links."""
    rows: list[dict[str, Any]] = []
    url: str | None = f"{server.base}/api/v1/history/trades/sim/BTC-USD"
    params: dict[str, Any] | None = {"start": start, "end": end, "limit": limit}
    while url is not None:
        body = httpx.get(url, params=params).json()
        rows.extend(body["data"])
        url, params = body["next"], None
    return rows


@pytest.mark.asyncio
async def test_trades_pages_give_every_row_exactly_once(server: Server) -> None:
    start, end = server.live_ns - 10**9, time.time_ns() - 10**9
    async with AsyncClient(server.base) as client:
        whole = await client.history.trades("BTC/USD", start, end, venue="sim")
        paged = await client.history.trades("BTC/USD", start, end, "sim", page_rows=97)
    reference = json_pages(server, start, end, limit=1000)
    assert len(whole) > 500
    assert len(whole) == len(paged) == len(reference)
    assert paged.equals(whole)
    assert paged["id"].is_unique
    assert paged["ts_event"].is_monotonic_increasing
    # a page boundary inside a group of trades at one instant is crossed exactly
    instants = paged["ts_event"].value_counts()
    assert (instants > 1).any()
    assert list(paged["id"]) == [row["id"] for row in reference]
    assert list(paged["price"]) == [Decimal(row["price"]) for row in reference]
    assert list(paged["amount"]) == [Decimal(row["amount"]) for row in reference]
    assert list(paged["side"]) == [row["side"] for row in reference]
    assert [t.value for t in paged["ts_event"]] == [row["ts_event"] for row in reference]
    assert str(paged["price"].dtype) == "decimal128(38, 2)[pyarrow]"
    assert str(paged["ts_event"].dtype) == "timestamp[ns, tz=UTC][pyarrow]"


@pytest.mark.asyncio
async def test_candles_in_small_pages_equal_one_page(server: Server) -> None:
    start, end = server.live_ns, time.time_ns() - 2 * 10**9  # candles complete by then
    async with AsyncClient(server.base) as client:
        whole = await client.history.candles("BTC/USD", start, end, interval="1s")
        paged = await client.history.candles("BTC/USD", start, end, "1s", page_rows=2)
        minute = await client.history.candles("BTC/USD", start, end, interval="1m")
    assert len(whole) >= 4 and paged.equals(whole)
    assert whole["start"].is_unique and whole["start"].is_monotonic_increasing
    assert (whole["high"] >= whole["low"]).all()
    assert whole["trades"].sum() == minute["trades"].sum()
    assert str(whole["close"].dtype) == "decimal128(38, 2)[pyarrow]"


@pytest.mark.asyncio
async def test_book_at_and_empty_ranges(server: Server) -> None:
    async with AsyncClient(server.base) as client:
        book = await client.history.book_at("BTC/USD", time.time_ns() - 10**9, depth=5)
        empty = await client.history.trades("BTC/USD", "2020-01-01T00:00:00Z", 1577836900 * 10**9)
        with pytest.raises(BadRequest):
            await client.history.trades("BTC/USD", 10**18, 10**18 - 1)
    assert list(book["side"]) == ["bid"] * 5 + ["ask"] * 5
    bids, asks = book[book.side == "bid"], book[book.side == "ask"]
    assert bids["price"].is_monotonic_decreasing and asks["price"].is_monotonic_increasing
    assert bids["price"].max() < asks["price"].min()
    assert book.attrs["symbol"] == "BTC/USD" and book.attrs["nonce"] > 0
    assert len(empty) == 0 and list(empty.columns) == [
        "ts_event",
        "ts_recv",
        "id",
        "price",
        "amount",
        "side",
    ]


@pytest.mark.asyncio
async def test_long_downloads_show_progress(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    start = server.live_ns
    async with AsyncClient(server.base) as client:
        await client.history.trades("BTC/USD", start, time.time_ns(), page_rows=200)
        assert "BTC/USD trades" in capsys.readouterr().err
        await client.history.trades("BTC/USD", start, time.time_ns(), progress=False)
        assert capsys.readouterr().err == ""


def test_times_are_taken_in_every_usual_form() -> None:
    assert time_param(5) == "5"
    assert time_param("2026-01-02T03:04:05Z") == "2026-01-02T03:04:05Z"
    assert time_param(pd.Timestamp("2026-01-02T03:04:05.123456789Z")) == "1767323045123456789"
    naive = pd.Timestamp("2026-01-02T03:04:05").to_pydatetime()
    assert time_param(naive) == "1767323045000000000"  # naive means UTC
    ago = int(time_param(dt.timedelta(hours=-1)))
    assert abs(time.time_ns() - 3600 * 10**9 - ago) < 10**9
    with pytest.raises(TypeError):
        time_param(1.5)  # type: ignore[arg-type]
