"""REST history: trades, candles, book at T, downloads, and clear 4xx for bad queries."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest

from helpers import Recording, make_runtime, record_simulator, serve_in_thread
from quantsaas.api.app import create_app
from quantsaas.config import Settings
from quantsaas.feeds.simulator import SimulatorFeed

BASE = "/api/v1/history"


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, Recording]]:
    root: Path = tmp_path_factory.mktemp("api-history")
    rec = record_simulator(root, seconds=4)
    settings = Settings(data_dir=root, history_max_range_days=2, history_max_rows=500)
    app = create_app(make_runtime([SimulatorFeed()], settings))
    app.state.recorder = rec.recorder
    with serve_in_thread(app) as base, httpx.Client(base_url=base, timeout=30) as client:
        yield client, rec


def _span(rec: Recording) -> tuple[int, int]:
    return rec.trades[0].ts_event, rec.trades[-1].ts_event + 1


def test_trades_page_with_next_link_and_decimal_strings(
    recorded: tuple[httpx.Client, Recording],
) -> None:
    client, rec = recorded
    start, end = _span(rec)
    body = client.get(
        f"{BASE}/trades/sim/BTC-USD", params={"start": start, "end": end, "limit": 50}
    ).json()
    mine = [t for t in rec.trades if t.instrument.symbol == "BTC/USD"]
    assert [t["id"] for t in body["data"]] == [t.trade_id for t in mine[:50]]
    assert body["data"][0]["price"] == mine[0].instrument.format_price(mine[0].price)
    second = client.get(body["next"]).json()
    assert [t["id"] for t in second["data"]] == [t.trade_id for t in mine[50:100]]


def test_candles_and_downloads(recorded: tuple[httpx.Client, Recording]) -> None:
    client, rec = recorded
    start, end = _span(rec)
    params: dict[str, Any] = {"start": start, "end": end, "interval": "1s"}
    body = client.get(f"{BASE}/candles/sim/ETH-USD", params=params).json()
    eth = [t for t in rec.trades if t.instrument.symbol == "ETH/USD"]
    assert sum(c["trades"] for c in body["data"]) == len(eth)
    assert body["data"][0]["open"] == eth[0].instrument.format_price(eth[0].price)
    got = client.get(f"{BASE}/candles/sim/ETH-USD", params={**params, "format": "csv"})
    assert got.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(got.text)))
    assert [r["open"] for r in rows] == [c["open"] for c in body["data"]]
    got = client.get(
        f"{BASE}/trades/sim/ETH-USD", params={"start": start, "end": end, "format": "parquet"}
    )
    table = pq.read_table(io.BytesIO(got.content))
    assert table.column("price").to_pylist()[:5] == [t.price for t in eth[:5]]
    assert b"quantsaas.instrument" in (table.schema.metadata or {})


def test_book_at_time(recorded: tuple[httpx.Client, Recording]) -> None:
    client, rec = recorded
    live = rec.books[len(rec.books) // 2]
    path = f"{BASE}/book/sim/{live.instrument.path_symbol}"
    body = client.get(path, params={"at": live.ts_event, "depth": 5}).json()
    fmt_p, fmt_s = live.instrument.format_price, live.instrument.format_size
    assert body["bids"] == [[fmt_p(p), fmt_s(s)] for p, s in live.bids[:5]]
    assert body["asks"] == [[fmt_p(p), fmt_s(s)] for p, s in live.asks[:5]]


@pytest.mark.parametrize(
    ("path", "params", "status", "code"),
    [
        ("trades/sim/BTC-USD", {"start": "2024-01-02", "end": "2024-01-01"}, 400, "bad-range"),
        (
            "trades/sim/DOGE-USD",
            {"start": "2024-01-01", "end": "2024-01-02"},
            404,
            "unknown-instrument",
        ),
        (
            "trades/nope/BTC-USD",
            {"start": "2024-01-01", "end": "2024-01-02"},
            404,
            "unknown-instrument",
        ),
        (
            "trades/sim/BTC-USD",
            {"start": "2024-01-01", "end": "2024-02-01"},
            400,
            "range-too-large",
        ),
        ("trades/sim/BTC-USD", {"start": "soon", "end": "2024-01-02"}, 400, "bad-request"),
        (
            "trades/sim/BTC-USD",
            {"start": "2024-01-01", "end": "2024-01-02", "limit": 501},
            400,
            "bad-request",
        ),
        (
            "trades/sim/BTC-USD",
            {"start": "2024-01-01", "end": "2024-01-02", "after": "x"},
            400,
            "bad-request",
        ),
        (
            "candles/sim/BTC-USD",
            {"start": "2024-01-01", "end": "2024-01-02", "interval": "2d"},
            400,
            "bad-request",
        ),
        ("book/sim/BTC-USD", {"at": "2023-12-31"}, 404, "no-data"),
        ("trades/sim/BTC-USD", {"start": "2024-01-01"}, 422, "validation-error"),
    ],
)
def test_bad_queries_get_problem_json(
    recorded: tuple[httpx.Client, Recording],
    path: str,
    params: dict[str, Any],
    status: int,
    code: str,
) -> None:
    client, _ = recorded
    got = client.get(f"{BASE}/{path}", params=params)
    assert got.status_code == status
    assert got.headers["content-type"] == "application/problem+json"
    assert got.json()["code"] == code and got.json()["detail"]


FAR = "300000000000000000000"  # year 11476
LAST = str(2**63 - 1)  # 2262-04-11, the last int64 nanosecond


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("trades/sim/BTC-USD", {"start": FAR, "end": FAR + "1"}),
        ("trades/sim/BTC-USD", {"start": "9999-12-31T00:00:00Z", "end": "9999-12-31T01:00:00Z"}),
        ("trades/sim/BTC-USD", {"start": "1969-12-31", "end": "1970-01-01"}),
        ("trades/sim/BTC-USD", {"start": "2024-01-01", "end": "2024-01-02", "after": FAR + "_1"}),
        ("trades/sim/BTC-USD", {"start": "1" * 40, "end": "2" * 40}),
        ("candles/sim/BTC-USD", {"start": FAR, "end": FAR + "1"}),
        ("book/sim/BTC-USD", {"at": FAR}),
        ("book/sim/BTC-USD", {"at": "9999-12-31T23:59:59Z"}),
    ],
)
def test_times_past_int64_are_a_400_not_a_500(
    recorded: tuple[httpx.Client, Recording], path: str, params: dict[str, Any]
) -> None:
    client, _ = recorded
    got = client.get(f"{BASE}/{path}", params=params)
    assert got.status_code == 400, got.text
    assert got.headers["content-type"] == "application/problem+json"
    assert got.json()["code"] == "bad-request"


def test_the_last_representable_time_is_served(recorded: tuple[httpx.Client, Recording]) -> None:
    client, _ = recorded
    end = int(LAST)
    window = {"start": str(end - 86_400 * 10**9), "end": LAST}
    for path in ("trades/sim/BTC-USD", "candles/sim/BTC-USD"):
        got = client.get(f"{BASE}/{path}", params=window)
        assert got.status_code == 200 and got.json()["data"] == [], got.text
    assert client.get(f"{BASE}/book/sim/BTC-USD", params={"at": LAST}).status_code in (200, 404)


def test_health_shows_the_recorder(recorded: tuple[httpx.Client, Recording]) -> None:
    client, rec = recorded
    body = client.get("/health").json()
    assert body["recorder"]["ok"] is True
    assert body["recorder"]["events"] == rec.recorder.status.events


def test_candle_pages_follow_next_links(recorded: tuple[httpx.Client, Recording]) -> None:
    client, rec = recorded
    start, end = _span(rec)
    url: str | None = f"{BASE}/candles/sim/BTC-USD?start={start - 10**10}&end={end}&interval=1s"
    whole = client.get(f"{url}&limit=500").json()["data"]
    pages: list[dict[str, Any]] = []
    url = f"{url}&limit=2"
    while url:
        body = client.get(url).json()
        assert len(body["data"]) <= 2
        pages.extend(body["data"])
        url = body["next"]
    assert pages == whole and len(whole) >= 4


def test_books_every_step(recorded: tuple[httpx.Client, Recording]) -> None:
    client, rec = recorded
    start, end = _span(rec)
    params: dict[str, Any] = {"start": start, "end": end, "step_ms": 200, "depth": 3}
    body = client.get(f"{BASE}/books/sim/BTC-USD", params=params).json()
    assert body["step_ms"] == 200 and len(body["data"]) >= (end - start) // 200_000_000 - 2
    first = body["data"][0]
    at = client.get(f"{BASE}/book/sim/BTC-USD", params={"at": first["ts_event"], "depth": 3})
    assert (first["bids"], first["asks"]) == (at.json()["bids"], at.json()["asks"])
    assert len(first["bids"]) == 3
    too_many = client.get(f"{BASE}/books/sim/BTC-USD", params={**params, "step_ms": 100})
    if (end - start) // 100_000_000 > 600:
        assert too_many.json()["code"] == "range-too-large"
    for bad in ({"step_ms": 50}, {"depth": 0}, {"depth": 10**6}, {"end": start}):
        answer = client.get(f"{BASE}/books/sim/BTC-USD", params={**params, **bad})
        assert answer.status_code in (400, 422), bad


def _json_rows(client: httpx.Client, url: str, params: dict[str, Any]) -> int:
    """Every row through the JSON body's `next` links."""
    rows = 0
    following: str | None = url
    query: dict[str, Any] | None = params
    while following is not None:
        body = client.get(following, params=query).json()
        rows += len(body["data"])
        following, query = body["next"], None
    return rows


@pytest.mark.parametrize("kind", ["trades", "candles"])
@pytest.mark.parametrize("form", ["parquet", "csv"])
def test_downloads_name_the_next_page_in_a_link_header(
    recorded: tuple[httpx.Client, Recording], kind: str, form: str
) -> None:
    client, rec = recorded
    start, end = _span(rec)
    query: dict[str, Any] = {"start": start, "end": end}
    if kind == "candles":
        query["interval"] = "1s"
    url: str | None = f"{BASE}/{kind}/sim/BTC-USD"
    assert url is not None
    expected = _json_rows(client, url, {**query, "limit": 500})
    params: dict[str, Any] | None = {
        **query,
        "format": form,
        "limit": 1 if kind == "candles" else 400,
    }
    rows = pages = 0
    while url is not None:
        got = client.get(url, params=params)
        assert got.status_code == 200
        if form == "parquet":
            rows += pq.read_table(io.BytesIO(got.content)).num_rows
        else:
            rows += len(list(csv.DictReader(io.StringIO(got.text))))
        link = got.links.get("next")
        url, params = (str(link["url"]), None) if link else (None, None)
        pages += 1
    assert pages > 2 and rows == expected
