"""Consolidated markets over REST (`/api/v1/consolidated/...`) and their stream encoders.

The service is a bus consumer built by the composition root (runtime.py); these routes read it
(`app.state.consolidated`, absent in the api role: 404 there).
Prices and amounts are decimal strings at the market's scale; every level and both BBO sides
name their venue.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from quantsaas.api.problems import PROBLEM_RESPONSES, Problem
from quantsaas.book.consolidated_live import ConsolidatedService, MarketState
from quantsaas.errors import UnknownInstrument, quote
from quantsaas.symbols import resolve
from quantsaas.wire import JSON, bbo_data, consolidated_book_data, tape_data

router = APIRouter(prefix="/api/v1/consolidated", tags=["consolidated"])


def _service(request: Request) -> ConsolidatedService:
    service: ConsolidatedService | None = request.app.state.consolidated
    if service is None:
        raise Problem(404, "unknown-instrument", "no consolidated markets in this process")
    return service


def _state(request: Request, symbol: str) -> MarketState:
    markets = _service(request).markets
    try:
        found = resolve((state.market.instrument for state in markets.values()), symbol)
    except UnknownInstrument:
        known = ", ".join(sorted(markets)) or "none"
        raise Problem(
            404, "unknown-instrument", f"no consolidated market {quote(symbol)}; known: {known}"
        ) from None
    return markets[found[0].symbol]


def _envelope(state: MarketState, ts_event: int, ts_recv: int) -> JSON:
    return {
        "symbol": state.market.pair,
        "timestamp": ts_event // 1_000_000 if ts_event else None,
        "ts_event": ts_event or None,
        "ts_recv": ts_recv or None,
    }


@router.get("", summary="Consolidated markets and their venues")
def markets(request: Request) -> JSON:
    service = _service(request)
    data: list[dict[str, Any]] = [
        {
            "symbol": pair,
            "path_symbol": state.market.instrument.path_symbol,
            "venues": [m.venue for m in state.market.members],
            "live_venues": list(state.market.venues()),
            "price_precision": state.market.price_scale,
            "amount_precision": state.market.size_scale,
            "crossed_events": state.crossed_events,
        }
        for pair, state in sorted(service.markets.items())
    ]
    groups = service.config.equivalence.groups
    return {"data": data, "quote_equivalence": [list(g) for g in groups]}


@router.get(
    "/bbo/{symbol}",
    summary="Best bid and offer across venues, with the venue of each side",
    responses=PROBLEM_RESPONSES,
)
def bbo(request: Request, symbol: str) -> JSON:
    state = _state(request, symbol)
    best = state.market.bbo()
    return {**_envelope(state, best.ts_event, best.ts_recv), **bbo_data(best)}


@router.get(
    "/book/{symbol}",
    summary="Consolidated L2 book; each level names its venue",
    responses=PROBLEM_RESPONSES,
)
def book(request: Request, symbol: str, depth: Annotated[int, Query(ge=1, le=1000)] = 20) -> JSON:
    state = _state(request, symbol)
    merged = state.market.book(depth)
    return {**_envelope(state, merged.ts_event, merged.ts_recv), **consolidated_book_data(merged)}


@router.get(
    "/tape/{symbol}", summary="Aggregated trade tape, oldest first", responses=PROBLEM_RESPONSES
)
def tape(request: Request, symbol: str, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> JSON:
    state = _state(request, symbol)
    recent = list(state.tape)[-limit:]
    return {"symbol": state.market.pair, "data": [tape_data(t) for t in recent]}
