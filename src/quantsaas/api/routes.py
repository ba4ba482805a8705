"""REST routes: service info, health, market summary, instruments, books and trades."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from quantsaas import __version__
from quantsaas.api.access import tier_denial
from quantsaas.api.auth import caller_is_admin, request_tier
from quantsaas.api.openapi import cap
from quantsaas.api.problems import PROBLEM_RESPONSES, Problem, check_at_most
from quantsaas.api.public_market import DelayedMarket
from quantsaas.book import L2Book
from quantsaas.channels import BOOK
from quantsaas.config import Settings
from quantsaas.errors import quote
from quantsaas.market import InstrumentState
from quantsaas.model import Instrument, now_ns
from quantsaas.readmodel import ReadModel, resolve
from quantsaas.runtime import Runtime
from quantsaas.wire import JSON, instrument_json, iso_from_ns, levels_json, trade_data

STALE_AFTER_S = 10.0

if TYPE_CHECKING:
    from quantsaas.feeds.base import Feed  # an api process loads no feed code

router = APIRouter()
probes = APIRouter()
"""Routes every role serves (the ingest role serves only these, /metrics, /livez, /readyz and
the stream)."""


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


@router.get("/", tags=["service"], summary="Service information")
async def service_info(request: Request) -> JSON:
    runtime = _runtime(request)
    instruments = runtime.read_model.instruments()
    return {
        "service": "quant-saas",
        "version": __version__,
        "venues": sorted({feed.venue for feed in runtime.feeds}),
        "symbols": sorted({symbol for _, symbol in instruments}),
        "channels": sorted(runtime.read_model.channels()),
        "option_chains": option_chains(runtime),
        "links": {
            "health": "/health",
            "market_data": "/api/market_data",
            "instruments": "/api/v1/instruments",
            "docs": "/docs",
            "openapi": "/openapi.json",
            "stream": "/ws",
        },
    }


def option_chains(runtime: Runtime) -> list[JSON]:
    """The option chains served, so a client asks `/api/v1/options/{currency}/...` only where
    there is one: Deribit's from its listed options, the simulator's (not listed as
    instruments) from the analytics once its first tickers arrived."""
    keys = {
        (i.venue, i.option.underlying)
        for i in runtime.read_model.instruments().values()
        if i.option is not None
    }
    if runtime.analytics is not None:
        keys.update(key for key, chain in runtime.analytics.options.items() if chain)
    return [
        {"venue": venue, "underlying": underlying, "currency": underlying.partition("/")[0]}
        for venue, underlying in sorted(keys)
    ]


def feed_is_live(feed: Feed, at_ns: int) -> bool:
    """Live and market data (never a heartbeat) within the venue's bound (what /health and
    /readyz count)."""
    return feed.stats.is_live(at_ns)


def stale_bounds(runtime: Runtime) -> dict[str, float]:
    """Venue -> its data-age bound in seconds (a book without data for longer is stale); a
    venue whose feed runs elsewhere (the api role) gets STALE_AFTER_S."""
    return {feed.venue: feed.stats.stale_after_s for feed in runtime.feeds}


def book_age(book: L2Book, at_ns: int, bounds: dict[str, float]) -> JSON:
    """`age_ms` (None while the book is not valid) and `stale` of one book."""
    age = book.age_ns(at_ns)
    bound = bounds.get(book.instrument.venue, STALE_AFTER_S)
    return {
        "age_ms": None if age is None else age // 1_000_000,
        "stale": age is not None and age > bound * 1e9,
    }


def _feed_health(feed: Feed, at_ns: int) -> JSON:
    stats = feed.stats
    age = stats.last_message_age_s(at_ns)
    live = feed_is_live(feed, at_ns)
    data_age = stats.last_data_age_s(at_ns)
    return {
        "venue": feed.venue,
        "state": stats.state.value,
        "live": live,
        "last_message_age_s": None if age is None else round(age, 3),
        "last_data_age_s": None if data_age is None else round(data_age, 3),
        "stale_after_s": stats.stale_after_s,
        "stale_books": stats.stale_books(at_ns),
        "messages_per_s": round(stats.messages_per_second(at_ns), 2),
        "messages": stats.messages,
        "bytes": stats.bytes,
        "gaps": stats.gaps,
        "resyncs": stats.resyncs,
        "reconnects": stats.reconnects,
        "malformed": stats.malformed,
        "ignored": stats.ignored,
        "last_error": stats.last_error,
        "last_error_age_s": None
        if stats.last_error_ns is None
        else round(max(0.0, (at_ns - stats.last_error_ns) / 1e9), 3),
        "endpoint": stats.endpoint,
        "instruments": [instrument.symbol for instrument in feed.instruments],
    }


@probes.get(
    "/health",
    tags=["service"],
    summary="Feed health; 503 when no feed is live",
    responses={503: {"description": "No feed is live"}},
)
async def health(request: Request) -> JSONResponse:
    runtime = _runtime(request)
    engine, bus = runtime.engine, runtime.bus
    at_ns = now_ns()
    feeds = [_feed_health(feed, at_ns) for feed in runtime.feeds]
    live = sum(1 for feed in feeds if feed["live"])
    status = "ok" if live == len(feeds) else "degraded" if live else "down"
    read_model = runtime.read_model
    books = [b for key in read_model.instruments() if (b := read_model.book(key)) is not None]
    bounds = stale_bounds(runtime)
    body = {
        "status": status,
        "feeds": feeds,
        "books": {"total": len(books), "valid": sum(1 for book in books if book.valid)},
        "books_stale": sum(1 for book in books if book_age(book, at_ns, bounds)["stale"]),
        "resyncs_requested": 0 if engine is None else engine.resyncs_requested,
        "bus": {"published": bus.published, "subscribers": bus.subscriber_count()},
        "consumers": {c.name: c.health(at_ns) for c in bus.consumers},
        "server_time": at_ns,
    }
    recorder = getattr(request.app.state, "recorder", None)
    if recorder is not None:
        recording = recorder.health()
        if await caller_is_admin(request):  # where the files are: administrators only
            recording["data_dir"] = str(recorder.config.root.resolve())
        body["recorder"] = recording
    return JSONResponse(body, status_code=200 if live else 503)


def _decimal_text(value: Decimal) -> str:
    return (
        format(value.normalize(), "f") if value == value.to_integral_value() else format(value, "f")
    )


def market_summary(
    read_model: ReadModel, instrument: Instrument, bounds: dict[str, float] | None = None
) -> JSON:
    book = read_model.book(instrument.key) or L2Book(instrument)
    state = read_model.state(instrument.key) or InstrumentState(instrument)
    price, size = instrument.format_price, instrument.format_size
    best_bid = book.best_bid() if book.valid else None
    best_ask = book.best_ask() if book.valid else None
    last_trade = state.last_trade
    last = last_trade.price if last_trade else None
    opened = state.open_24h()
    change = None if last is None or opened is None else last - opened
    percentage = None
    if change is not None and opened:
        percentage = round(float(Decimal(change) * 100 / Decimal(opened)), 4)
    mid = book.mid() if book.valid else None
    spread = book.spread() if book.valid else None
    ts_event = max(book.ts_event, last_trade.ts_event if last_trade else 0)
    ts_recv = max(book.ts_recv, last_trade.ts_recv if last_trade else 0)
    return {
        "venue": instrument.venue,
        "symbol": instrument.symbol,
        "last": None if last is None else price(last),
        "bid": None if best_bid is None else price(best_bid[0]),
        "bidVolume": None if best_bid is None else size(best_bid[1]),
        "ask": None if best_ask is None else price(best_ask[0]),
        "askVolume": None if best_ask is None else size(best_ask[1]),
        "spread": None if spread is None else price(spread),
        "mid": None if mid is None else _decimal_text(mid),
        "open": None if opened is None else price(opened),
        "change": None if change is None else price(change),
        "percentage": percentage,
        "baseVolume": size(state.volume_24h()),
        "trades": state.trade_count,
        "book_valid": book.valid,
        **book_age(book, now_ns(), bounds or {}),
        "timestamp": ts_event // 1_000_000 if ts_event else None,
        "datetime": iso_from_ns(ts_event) if ts_event else None,
        "ts_event": ts_event or None,
        "ts_recv": ts_recv or None,
    }


@router.get(
    "/api/market_data",
    tags=["market data"],
    summary="Latest state of every symbol (or of `symbols`); delayed without credentials",
    description="Without credentials the summary is `delay_s` seconds old (the public view); "
    "with a key or session it is live and covers what your tier includes.",
    responses=PROBLEM_RESPONSES,
)
async def market_data(
    request: Request,
    symbols: Annotated[
        str | None, Query(description="Comma-separated, e.g. `BTC/USD,ETH-USD`", max_length=2000)
    ] = None,
    venue: Annotated[str | None, Query(max_length=64)] = None,
) -> JSON:
    read_model = _runtime(request).read_model
    known = read_model.instruments()
    if symbols:
        wanted = [part for part in symbols.split(",") if part.strip()]
        instruments = [found for text in wanted for found in resolve(known, text, venue)]
    else:
        instruments = [
            instrument
            for instrument in known.values()
            if venue is None or instrument.venue == venue
        ]
        if venue is not None and not instruments:
            raise Problem(404, "unknown-instrument", f"unknown venue {quote(venue)}")
    tier = request_tier(request)
    if tier is None:  # anonymous: the public, delayed view
        delayed: DelayedMarket = request.app.state.delayed_market
        sample = delayed.delayed()
        return {
            "delay_s": _settings(request).public_market_data_delay_s,
            "data": [sample[i.key] for i in instruments if i.key in sample],
        }
    bounds = stale_bounds(_runtime(request))
    return {
        "delay_s": 0,
        "data": [
            market_summary(read_model, instrument, bounds)
            for instrument in instruments
            if tier_denial(tier, None, instrument.venue, [instrument.symbol]) is None
        ],
    }


@router.get("/api/v1/instruments", tags=["market data"], summary="Every instrument served")
async def instruments(request: Request) -> JSON:
    known = _runtime(request).read_model.instruments()
    return {"data": [instrument_json(instrument) for instrument in known.values()]}


def _path_instrument(read_model: ReadModel, venue: str, symbol: str) -> Instrument:
    return resolve(read_model.instruments(), symbol, venue)[0]


def _served(found: L2Book | InstrumentState | None) -> L2Book | InstrumentState:
    if found is None:
        raise Problem(
            503, "not-served-here", "this API process serves the stream only (role api): use /ws"
        )
    return found


@router.get(
    "/api/v1/book/{venue}/{symbol}",
    tags=["market data"],
    summary="L2 order book (symbol: a path_symbol such as BTC-USD)",
    responses={**PROBLEM_RESPONSES, 503: {"description": "Book not synchronised yet"}},
)
async def book(
    request: Request,
    venue: str,
    symbol: str,
    depth: Annotated[
        int, Query(ge=1, description="Levels per side", json_schema_extra=cap("max_book_depth"))
    ] = 50,
) -> JSON:
    runtime = _runtime(request)
    check_at_most("depth", depth, _settings(request).max_book_depth)
    instrument = _path_instrument(runtime.read_model, venue, symbol)
    l2 = _served(runtime.read_model.book(instrument.key))
    assert isinstance(l2, L2Book)
    snapshot = l2.to_snapshot(depth)
    mid = l2.mid()
    spread = l2.spread()
    return {
        "venue": instrument.venue,
        "symbol": instrument.symbol,
        "seq": runtime.bus.last_seq((BOOK, *instrument.key)),
        "nonce": snapshot.sequence,
        "version": l2.version,
        "timestamp": snapshot.ts_event // 1_000_000,
        "datetime": iso_from_ns(snapshot.ts_event),
        "ts_event": snapshot.ts_event,
        "ts_recv": snapshot.ts_recv,
        "mid": None if mid is None else _decimal_text(mid),
        "spread": None if spread is None else instrument.format_price(spread),
        **book_age(l2, now_ns(), stale_bounds(runtime)),
        "bids": levels_json(instrument, snapshot.bids),
        "asks": levels_json(instrument, snapshot.asks),
    }


@router.get(
    "/api/v1/trades/{venue}/{symbol}",
    tags=["market data"],
    summary="Recent trades, oldest first (symbol: a path_symbol such as BTC-USD)",
    responses=PROBLEM_RESPONSES,
)
async def trades(
    request: Request,
    venue: str,
    symbol: str,
    limit: Annotated[int, Query(ge=1, json_schema_extra=cap("max_trades_limit"))] = 100,
) -> JSON:
    read_model = _runtime(request).read_model
    check_at_most("limit", limit, _settings(request).max_trades_limit)
    instrument = _path_instrument(read_model, venue, symbol)
    state = _served(read_model.state(instrument.key))
    assert isinstance(state, InstrumentState)
    recent = list(state.trades)[-limit:]
    data: list[dict[str, Any]] = [trade_data(trade) for trade in recent]
    return {"venue": instrument.venue, "symbol": instrument.symbol, "data": data}
