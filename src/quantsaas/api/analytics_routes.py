"""REST routes of the analytics: candles, VWAP, OFI, VPIN per instrument; option chain and smile.

Live state comes from the `AnalyticsService` bus consumer (`app.state.analytics`). Candles are kept
in memory (the last 1000 closed per interval, plus the open one); `source=trades` recomputes
them from the recent stored trades instead, with the same code path as history will use.
Ranges (`start`, `end`, ms) filter what is held; a persistent history arrives with its issue.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request

from quantsaas.analytics.candles import INTERVALS, candles_from_trades
from quantsaas.analytics.events import OptionGreeks
from quantsaas.analytics.live import AnalyticsService, InstrumentAnalytics
from quantsaas.analytics.smile import smile_summary
from quantsaas.api.problems import PROBLEM_RESPONSES, Problem
from quantsaas.errors import quote
from quantsaas.market import InstrumentState
from quantsaas.model import Instrument, now_ns
from quantsaas.readmodel import resolve
from quantsaas.runtime import Runtime
from quantsaas.wire import (
    JSON,
    candle_data,
    decimal_text,
    iso_from_ns,
    number,
    ofi_data,
    option_greeks_data,
    vpin_data,
)

router = APIRouter(tags=["analytics"], responses=PROBLEM_RESPONSES)

Limit = Annotated[int, Query(ge=1, le=1000)]


def _service(request: Request) -> AnalyticsService:
    service: AnalyticsService | None = getattr(request.app.state, "analytics", None)
    if service is None:
        raise Problem(503, "service-unavailable", "analytics are not running on this server")
    return service


def _target(request: Request, venue: str, symbol: str) -> tuple[Instrument, InstrumentAnalytics]:
    service = _service(request)
    runtime: Runtime = request.app.state.runtime
    instrument = resolve(runtime.read_model.instruments(), symbol, venue)[0]
    state = service.instruments.get(instrument.key)
    if state is None:  # e.g. a consolidated market: no trades or book of its own to analyse
        raise Problem(
            404, "unknown-instrument", f"no analytics for {quote(venue)} {instrument.symbol}"
        )
    return instrument, state


def _market(request: Request, instrument: Instrument) -> InstrumentState:
    runtime: Runtime = request.app.state.runtime
    state = runtime.read_model.state(instrument.key)
    return state if state is not None else InstrumentState(instrument)


def _head(instrument: Instrument) -> JSON:
    return {"venue": instrument.venue, "symbol": instrument.symbol}


@router.get(
    "/api/v1/analytics/candles/{venue}/{symbol}",
    summary="OHLCV candles, oldest first; the last one may still be open",
)
def candles(
    request: Request,
    venue: str,
    symbol: str,
    interval: Annotated[str, Query(description=f"One of {', '.join(INTERVALS)}")] = "1m",
    limit: Limit = 100,
    start: Annotated[int | None, Query(description="Candles starting at or after (ms)")] = None,
    end: Annotated[int | None, Query(description="Candles starting before (ms)")] = None,
    source: Literal["live", "trades"] = "live",
) -> JSON:
    instrument, state = _target(request, venue, symbol)
    if interval not in INTERVALS:
        raise Problem(
            400, "bad-request", f"unknown interval {quote(interval)}; use {list(INTERVALS)}"
        )
    if source == "trades":
        trades = list(_market(request, instrument).trades)
        held = candles_from_trades(trades, interval, until_ns=now_ns()) if trades else []
    else:
        held = list(state.closed[interval])
        current = state.candles[interval].current
        held += [current] if current is not None else []
    lo = -math.inf if start is None else start * 1_000_000
    hi = math.inf if end is None else end * 1_000_000
    chosen = [c for c in held if lo <= c.start_ns < hi][-limit:]
    return {**_head(instrument), "interval": interval, "data": [candle_data(c) for c in chosen]}


@router.get("/api/v1/analytics/vwap/{venue}/{symbol}", summary="Session and rolling VWAP")
def vwap(request: Request, venue: str, symbol: str) -> JSON:
    instrument, state = _target(request, venue, symbol)
    session = state.session_vwap
    size = instrument.format_size
    now = now_ns()
    rolling = []
    for window_s, tracker in sorted(state.rolling_vwap.items()):
        tracker.expire(now)
        rolling.append(
            {
                "window_s": window_s,
                "vwap": decimal_text(tracker.value),
                "volume": size(tracker.volume),
            }
        )
    return {
        **_head(instrument),
        "session": {
            "start": None if session.session_start is None else session.session_start // 1_000_000,
            "vwap": decimal_text(session.value),
            "volume": size(session.volume),
        },
        "rolling": rolling,
    }


@router.get("/api/v1/analytics/ofi/{venue}/{symbol}", summary="Recent OFI buckets, oldest first")
def ofi(request: Request, venue: str, symbol: str, limit: Limit = 60) -> JSON:
    instrument, state = _target(request, venue, symbol)
    buckets = list(state.ofi_buckets)[-limit:]
    return {
        **_head(instrument),
        "levels": state.ofi.levels,
        "bucket_ms": state.ofi.bucket_ns // 1_000_000,
        "data": [ofi_data(b) for b in buckets],
    }


@router.get("/api/v1/analytics/vpin/{venue}/{symbol}", summary="Recent VPIN buckets, oldest first")
def vpin(request: Request, venue: str, symbol: str, limit: Limit = 50) -> JSON:
    instrument, state = _target(request, venue, symbol)
    stream = state.vpin
    return {
        **_head(instrument),
        "classifier": "aggressor",
        "bucket_volume": None
        if stream is None
        else instrument.format_size(stream.config.bucket_volume),
        "window": None if stream is None else stream.config.window,
        "calibrating": stream is None,
        "data": [vpin_data(b) for b in list(state.vpin_buckets)[-limit:]],
    }


def _chain(
    request: Request, currency: str, venue: str | None
) -> tuple[str, str, list[OptionGreeks]]:
    service = _service(request)
    wanted = currency.strip().upper()
    for (chain_venue, underlying), options in service.options.items():
        if underlying.split("/")[0] == wanted and venue in (None, chain_venue):
            return chain_venue, underlying, list(options.values())
    raise Problem(404, "unknown-instrument", f"no options on {quote(currency)}")


def _by_expiry(options: list[OptionGreeks]) -> dict[int, list[OptionGreeks]]:
    groups: dict[int, list[OptionGreeks]] = defaultdict(list)
    for item in options:
        option = item.instrument.option
        if option is not None:
            groups[option.expiry_ns].append(item)
    for items in groups.values():
        items.sort(key=_strike_order)
    return dict(sorted(groups.items()))


def _strike_order(item: OptionGreeks) -> tuple[int, str]:
    option = item.instrument.option
    return (0 if option is None else option.strike, item.instrument.symbol)


@router.get("/api/v1/options/{currency}/chain", summary="Option chain with venue and our greeks")
def option_chain(request: Request, currency: str, venue: str | None = None) -> JSON:
    chain_venue, underlying, options = _chain(request, currency, venue)
    return {
        "currency": currency.upper(),
        "venue": chain_venue,
        "underlying": underlying,
        "expiries": [
            {
                "expiry": expiry // 1_000_000,
                "expiry_datetime": iso_from_ns(expiry),
                "options": [option_greeks_data(item) for item in items],
            }
            for expiry, items in _by_expiry(options).items()
        ],
    }


@router.get(
    "/api/v1/options/{currency}/smile",
    summary="Per expiry: smile from mark IVs, ATM vol, 25-delta risk reversal and butterfly",
)
def option_smile(request: Request, currency: str, venue: str | None = None) -> JSON:
    chain_venue, underlying, options = _chain(request, currency, venue)
    now = now_ns()
    expiries = []
    for expiry, items in _by_expiry(options).items():
        if expiry <= now:
            continue
        forward = items[0].ticker.underlying_price
        points: dict[float, float] = {}
        for item in items:
            option = item.instrument.option
            assert option is not None
            strike = float(option.strike_decimal)
            # the out-of-the-money option of each strike carries the smile
            if (option.kind == "call") == (strike >= forward):
                points[strike] = item.ticker.mark_iv / 100
        summary = smile_summary(forward, list(points), list(points.values()), expiry, now)
        expiries.append(
            {
                "expiry": expiry // 1_000_000,
                "expiry_datetime": iso_from_ns(expiry),
                "years": summary.years,
                "forward": forward,
                "atm_iv": number(summary.atm_iv * 100),
                "rr25": number(summary.rr25 * 100),
                "bf25": number(summary.bf25 * 100),
                "smile": [
                    {"strike": k, "iv": v * 100, "call_delta": d}
                    for k, v, d in zip(
                        summary.strikes, summary.ivs, summary.call_deltas, strict=True
                    )
                ],
            }
        )
    return {
        "currency": currency.upper(),
        "venue": chain_venue,
        "underlying": underlying,
        "units": "vol points (percent)",
        "term_structure": [{"expiry": e["expiry"], "atm_iv": e["atm_iv"]} for e in expiries],
        "expiries": expiries,
    }
