"""REST routes of the recorded history: trades, candles and the book at a past instant.

Times (`start`, `end`, `at`) are ISO 8601 or integer nanoseconds of venue time; ranges are
half-open [start, end). Trades and candles page with `limit` and a `next` link; `format=csv` or
`format=parquet` downloads the page (Parquet keeps raw int64 prices and sizes with the
instrument's scales in the schema metadata; CSV and JSON have decimal strings). A downloaded page
with more after it names the next one in a `Link: <url>; rel="next"` header (RFC 8288), as the
JSON body's `next` does.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from quantsaas.api.auth import request_tier
from quantsaas.api.openapi import cap
from quantsaas.api.problems import PROBLEM_RESPONSES, Problem, check_at_most
from quantsaas.config import Settings
from quantsaas.errors import ConfigError, StorageError
from quantsaas.model import Instrument, now_ns
from quantsaas.store.history import (
    HistoryStore,
    format_cursor,
    parse_cursor,
    parse_interval,
    parse_time,
)
from quantsaas.store.layout import NS, with_instrument
from quantsaas.wire import JSON, candle_data, iso_from_ns, levels_json, trade_data

router = APIRouter(prefix="/api/v1/history", tags=["history"])

Format = Literal["json", "csv", "parquet"]
DEFAULT_LIMIT = 1000
TimeText = Annotated[str, Query(max_length=40, description="ISO 8601 or integer ns")]
ROWS = Query(
    ge=1, description="default 1000 (or the cap)", json_schema_extra=cap("history_max_rows")
)


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _store(request: Request) -> HistoryStore:
    store = getattr(request.app.state, "history", None)
    if store is None:
        store = request.app.state.history = HistoryStore(_settings(request).data_dir)
    assert isinstance(store, HistoryStore)
    return store


def _range(request: Request, start: str, end: str) -> tuple[int, int]:
    try:
        first, last = parse_time(start), parse_time(end)
    except ConfigError as exc:
        raise Problem(400, "bad-request", str(exc)) from None
    if last <= first:
        raise Problem(400, "bad-range", f"end ({end}) must be after start ({start})")
    days = _settings(request).history_max_range_days
    if last - first > days * 86_400 * NS:
        raise Problem(
            400, "range-too-large", f"the range spans more than {days:g} days; split it up"
        )
    tier = request_tier(request)
    if tier is not None and first < now_ns() - int(tier.history_days * 86_400 * NS):
        raise Problem(
            403,
            "tier-required",
            f"the {tier.name} tier reaches {tier.history_days:g} days back; start is older",
        )
    return first, last


def _instrument(request: Request, venue: str, symbol: str) -> Instrument:
    return _store(request).instrument(venue, symbol)


def _limit(request: Request, limit: int | None) -> int:
    cap = _settings(request).history_max_rows
    if limit is None:
        return min(DEFAULT_LIMIT, cap)
    check_at_most("limit", limit, cap)
    return limit


def _download_headers(name: str, next_url: str | None) -> dict[str, str]:
    headers = {"content-disposition": f'attachment; filename="{name}"'}
    if next_url is not None:
        headers["link"] = f'<{next_url}>; rel="next"'
    return headers


def _csv(header: list[str], rows: Iterable[list[Any]], name: str, next_url: str | None) -> Response:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return Response(
        buffer.getvalue(),
        media_type="text/csv",
        headers=_download_headers(f"{name}.csv", next_url),
    )


def _parquet(table: Any, name: str, next_url: str | None) -> Response:
    import pyarrow.parquet as pq  # the history's PyArrow and DuckDB load on the first query

    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    return Response(
        buffer.getvalue(),
        media_type="application/vnd.apache.parquet",
        headers=_download_headers(f"{name}.parquet", next_url),
    )


@router.get(
    "/trades/{venue}/{symbol}",
    summary="Recorded trades in [start, end), oldest first (symbol written BTC-USD)",
    responses=PROBLEM_RESPONSES,
)
def history_trades(
    request: Request,
    venue: str,
    symbol: str,
    start: TimeText,
    end: TimeText,
    limit: Annotated[int | None, ROWS] = None,
    after: Annotated[str | None, Query(max_length=60, description="`next_cursor`")] = None,
    format: Format = "json",
) -> Any:
    first, last = _range(request, start, end)
    limit = _limit(request, limit)
    instrument = _instrument(request, venue, symbol)
    store = _store(request)
    try:
        cursor = None if after is None else parse_cursor(after)
    except ConfigError as exc:
        raise Problem(400, "bad-request", str(exc)) from None
    name = f"trades-{venue}-{instrument.path_symbol}-{first}"
    if format == "parquet":
        table = store.trades_table(instrument, first, last, limit + 1, cursor)
        next_url = None
        if table.num_rows > limit:
            table = table.slice(0, limit)
            ts_event, rec = table["ts_event"][-1].as_py(), table["rec"][-1].as_py()
            after_last = format_cursor(ts_event, rec)
            next_url = str(request.url.include_query_params(after=after_last))
        table = with_instrument(table, instrument) if table.num_columns else table
        return _parquet(table, name, next_url)
    page = store.trades(instrument, first, last, limit, cursor)
    next_url = None
    if page.next_cursor is not None:
        next_url = str(request.url.include_query_params(after=page.next_cursor))
    if format == "csv":
        rows = (
            [
                t.ts_event,
                iso_from_ns(t.ts_event),
                t.trade_id,
                instrument.format_price(t.price),
                instrument.format_size(t.size),
                t.side.value,
            ]
            for t in page.trades
        )
        header = ["ts_event", "datetime", "id", "price", "amount", "side"]
        return _csv(header, rows, name, next_url)
    return {
        "venue": instrument.venue,
        "symbol": instrument.symbol,
        "data": [trade_data(trade) for trade in page.trades],
        "next_cursor": page.next_cursor,
        "next": next_url,
    }


@router.get(
    "/candles/{venue}/{symbol}",
    summary="OHLCV candles from recorded trades, any interval from 1s to 1d",
    responses=PROBLEM_RESPONSES,
)
def history_candles(
    request: Request,
    venue: str,
    symbol: str,
    start: TimeText,
    end: TimeText,
    interval: Annotated[str, Query(max_length=10, description="e.g. 1s, 15s, 1m, 4h, 1d")] = "1m",
    limit: Annotated[int | None, ROWS] = None,
    format: Format = "json",
) -> Any:
    first, last = _range(request, start, end)
    limit = _limit(request, limit)
    try:
        width = parse_interval(interval)
    except ConfigError as exc:
        raise Problem(400, "bad-request", str(exc)) from None
    instrument = _instrument(request, venue, symbol)
    found = _store(request).candles(instrument, interval, first, last, now_ns(), limit + 1)
    candles, more = found[:limit], found[limit:]
    name = f"candles-{interval}-{venue}-{instrument.path_symbol}-{first}"
    data = [{**candle_data(c), "end_ns": c.start_ns + width} for c in candles]
    next_url = None
    if more:
        next_url = str(request.url.include_query_params(start=str(more[0].start_ns)))
    if format == "csv":
        header = [
            "start_ns",
            "start_datetime",
            "open",
            "high",
            "low",
            "close",
            "volume",
            "buy_volume",
            "vwap",
            "trades",
            "closed",
        ]
        return _csv(header, ([row[key] for key in header] for row in data), name, next_url)
    if format == "parquet":
        import pyarrow as pa

        return _parquet(pa.Table.from_pylist(data), name, next_url)
    return {
        "venue": instrument.venue,
        "symbol": instrument.symbol,
        "interval": interval,
        "data": data,
        "next": next_url,
    }


@router.get(
    "/book/{venue}/{symbol}",
    summary="The L2 book as it was at `at` (nearest snapshot + deltas)",
    responses={**PROBLEM_RESPONSES, 404: {"description": "Unknown instrument or no book then"}},
)
def history_book(
    request: Request,
    venue: str,
    symbol: str,
    at: TimeText,
    depth: Annotated[int, Query(ge=1, json_schema_extra=cap("max_book_depth"))] = 50,
) -> JSON:
    try:
        at_ns = parse_time(at)
    except ConfigError as exc:
        raise Problem(400, "bad-request", str(exc)) from None
    check_at_most("depth", depth, _settings(request).max_book_depth)
    instrument = _instrument(request, venue, symbol)
    try:
        book = _store(request).book_at(instrument, at_ns, depth)
    except StorageError as exc:
        raise Problem(404, "no-data", str(exc)) from None
    return {
        "venue": instrument.venue,
        "symbol": instrument.symbol,
        "at": at_ns,
        "nonce": book.sequence,
        "timestamp": book.ts_event // 1_000_000,
        "datetime": iso_from_ns(book.ts_event),
        "ts_event": book.ts_event,
        "ts_recv": book.ts_recv,
        "bids": levels_json(instrument, book.bids),
        "asks": levels_json(instrument, book.asks),
    }


MAX_BOOKS = 600
"""Most instants one `/books` answer holds."""


@router.get(
    "/books/{venue}/{symbol}",
    summary="The L2 book every `step_ms` in [start, end) (e.g. a heatmap's history)",
    responses=PROBLEM_RESPONSES,
)
def history_books(
    request: Request,
    venue: str,
    symbol: str,
    start: TimeText,
    end: TimeText,
    step_ms: Annotated[int, Query(ge=100, le=86_400_000)] = 1000,
    depth: Annotated[int, Query(ge=1)] = 50,
) -> JSON:
    first, last = _range(request, start, end)
    check_at_most("depth", depth, _settings(request).max_book_depth)
    step = step_ms * 1_000_000
    if (last - first) // step > MAX_BOOKS:
        wanted = f"more than {MAX_BOOKS} books: a larger step_ms or a shorter range"
        raise Problem(400, "range-too-large", wanted)
    instrument = _instrument(request, venue, symbol)
    books = _store(request).book_series(instrument, first, last, step, depth)
    return {
        "venue": instrument.venue,
        "symbol": instrument.symbol,
        "step_ms": step_ms,
        "data": [
            {
                "timestamp": book.ts_event // 1_000_000,
                "datetime": iso_from_ns(book.ts_event),
                "ts_event": book.ts_event,
                "nonce": book.sequence,
                "bids": levels_json(instrument, book.bids),
                "asks": levels_json(instrument, book.asks),
            }
            for book in books
        ],
    }
