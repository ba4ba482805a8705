"""Consolidated markets over REST (`/api/v1/consolidated/...`) and their stream encoders.

`install(app)` (one line in `create_app`) installs the consolidated service on the app's engine
(channels `bbo`, `consolidated_book`, `tape` on the pseudo venue `consolidated`) and this router.
Prices and amounts are decimal strings at the market's scale; every level and both BBO sides
name their venue.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query, Request

from quantsaas.api.problems import PROBLEM_RESPONSES, Problem
from quantsaas.api.wire import JSON, iso_from_ns, register_encoder
from quantsaas.book.consolidated import (
    Bbo,
    ConsolidatedBook,
    QuoteEquivalence,
    TapeTrade,
    VenueLevel,
)
from quantsaas.book.consolidated_live import (
    ConsolidatedConfig,
    ConsolidatedService,
    MarketState,
    install_consolidated,
)
from quantsaas.config import Settings
from quantsaas.model import Instrument, symbol_from_text

router = APIRouter(prefix="/api/v1/consolidated", tags=["consolidated"])


def _level(inst: Instrument, level: VenueLevel | None) -> list[str] | None:
    if level is None:
        return None
    return [inst.format_price(level.price), inst.format_size(level.size), level.venue]


def bbo_data(bbo: Bbo) -> JSON:
    inst = bbo.instrument
    spread = bbo.spread
    return {
        "bid": _level(inst, bbo.bid),
        "ask": _level(inst, bbo.ask),
        "bid_venue": None if bbo.bid is None else bbo.bid.venue,
        "ask_venue": None if bbo.ask is None else bbo.ask.venue,
        "spread": None if spread is None else inst.format_price(spread),
        "crossed": bbo.crossed,
        "locked": bbo.locked,
        "venues": list(bbo.venues),
    }


def book_data(book: ConsolidatedBook) -> JSON:
    inst = book.instrument
    return {
        "bids": [_level(inst, level) for level in book.bids],
        "asks": [_level(inst, level) for level in book.asks],
        "venues": list(book.venues),
    }


def tape_data(tape: TapeTrade) -> JSON:
    inst = tape.instrument
    return {
        "id": tape.trade.trade_id,
        "venue": tape.venue,
        "price": inst.format_price(tape.price),
        "amount": inst.format_size(tape.size),
        "side": tape.trade.side.value,
        "timestamp": tape.ts_event // 1_000_000,
        "datetime": iso_from_ns(tape.ts_event),
    }


register_encoder(Bbo, "bbo", bbo_data)
register_encoder(ConsolidatedBook, "consolidated_book", book_data)
register_encoder(TapeTrade, "tape", tape_data)


def _service(request: Request) -> ConsolidatedService:
    service: ConsolidatedService = request.app.state.consolidated
    return service


def _state(request: Request, symbol: str) -> MarketState:
    if "-" not in symbol and "/" not in symbol:
        raise Problem(404, "unknown-instrument", f"no symbol {symbol!r}: symbols look like BTC-USD")
    state = _service(request).markets.get(symbol_from_text(symbol))
    if state is None:
        known = ", ".join(sorted(_service(request).markets)) or "none"
        raise Problem(
            404, "unknown-instrument", f"no consolidated market {symbol!r}; known: {known}"
        )
    return state


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
            "path_symbol": pair.replace("/", "-"),
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
    return {**_envelope(state, merged.ts_event, merged.ts_recv), **book_data(merged)}


@router.get(
    "/tape/{symbol}", summary="Aggregated trade tape, oldest first", responses=PROBLEM_RESPONSES
)
def tape(request: Request, symbol: str, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> JSON:
    state = _state(request, symbol)
    recent = list(state.tape)[-limit:]
    return {"symbol": state.market.pair, "data": [tape_data(t) for t in recent]}


def install(app: FastAPI) -> ConsolidatedService:
    """Install the consolidated service on `app.state.engine` and mount the routes."""
    settings: Settings = app.state.settings
    config = ConsolidatedConfig(
        QuoteEquivalence.of(settings.consolidated_quote_equivalence), settings.consolidated_depth
    )
    service = install_consolidated(app.state.engine, config)
    app.state.consolidated = service
    app.include_router(router)
    return service
