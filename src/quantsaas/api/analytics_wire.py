"""JSON shapes of the analytics (candles, VWAP, OFI, VPIN, option greeks), REST and stream alike.

Candle prices and volumes are exact decimal strings at the instrument's precision; VWAP is a
decimal string (exact sums, one Decimal division to 28 significant digits). OFI is given both
exactly (`ofi`, decimal strings in the instrument's size unit, per level) and depth-normalised
(`ofi_normalised`, floats). VPIN, IVs and greeks are floats; NaN becomes null.
"""

from __future__ import annotations

import math
from decimal import Decimal

from quantsaas.analytics.candles import Candle
from quantsaas.analytics.greeks import VenueGreeks
from quantsaas.analytics.live import OfiUpdate, OptionGreeks, VpinUpdate
from quantsaas.api.wire import JSON, iso_from_ns, register_encoder
from quantsaas.model import OptionTicker, format_fixed


def number(value: float) -> float | None:
    return value if math.isfinite(value) else None


def decimal_text(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def candle_data(candle: Candle) -> JSON:
    price, size = candle.instrument.format_price, candle.instrument.format_size
    return {
        "interval": candle.interval,
        "start": candle.start_ns // 1_000_000,
        "start_datetime": iso_from_ns(candle.start_ns),
        "start_ns": candle.start_ns,
        "open": price(candle.open),
        "high": price(candle.high),
        "low": price(candle.low),
        "close": price(candle.close),
        "volume": size(candle.volume),
        "buy_volume": size(candle.buy_volume),
        "vwap": decimal_text(candle.vwap),
        "trades": candle.trades,
        "closed": candle.closed,
    }


def ofi_data(update: OfiUpdate) -> JSON:
    bucket, size = update.bucket, update.instrument.format_size
    return {
        "start": bucket.start_ns // 1_000_000,
        "start_ns": bucket.start_ns,
        "width_ms": bucket.width_ns // 1_000_000,
        "levels": len(bucket.ofi),
        "ofi": [size(value) for value in bucket.ofi],
        "ofi_normalised": [number(value) for value in bucket.normalised],
        "mean_depth": format_fixed(round(bucket.mean_depth), update.instrument.size_scale),
        "events": bucket.events,
    }


def vpin_data(update: VpinUpdate) -> JSON:
    bucket, scale = update.bucket, 10**update.instrument.size_scale
    return {
        "bucket": bucket.index,
        "bucket_volume": update.instrument.format_size(update.bucket_volume),
        "window": update.window,
        "buy_volume": bucket.buy / scale,
        "sell_volume": bucket.sell / scale,
        "vpin": bucket.vpin,
        "classifier": "aggressor",
    }


def venue_greeks_json(greeks: VenueGreeks) -> JSON:
    return {
        name: number(float(getattr(greeks, name)))
        for name in ("price", "delta", "gamma", "vega", "theta", "rho", "coin_delta")
    }


def option_ticker_data(ticker: OptionTicker) -> JSON:
    instrument = ticker.instrument
    option = instrument.option
    price = instrument.format_price
    return {
        "instrument_name": instrument.symbol,
        "underlying": None if option is None else option.underlying,
        "kind": None if option is None else option.kind,
        "strike": None if option is None else format(option.strike_decimal, "f"),
        "expiry": None if option is None else option.expiry_ns // 1_000_000,
        "expiry_datetime": None if option is None else iso_from_ns(option.expiry_ns),
        "mark_price": price(ticker.mark_price),
        "best_bid_price": None if ticker.best_bid_price is None else price(ticker.best_bid_price),
        "best_ask_price": None if ticker.best_ask_price is None else price(ticker.best_ask_price),
        "mark_iv": ticker.mark_iv,
        "bid_iv": ticker.bid_iv,
        "ask_iv": ticker.ask_iv,
        "underlying_price": ticker.underlying_price,
        "underlying_index": ticker.underlying_index,
        "index_price": ticker.index_price,
        "interest_rate": ticker.interest_rate,
        "open_interest": instrument.format_size(ticker.open_interest),
        "greeks": {
            "delta": ticker.delta,
            "gamma": ticker.gamma,
            "vega": ticker.vega,
            "theta": ticker.theta,
            "rho": ticker.rho,
        },
    }


def option_greeks_data(greeks: OptionGreeks) -> JSON:
    return {**option_ticker_data(greeks.ticker), "ours": venue_greeks_json(greeks.ours)}


register_encoder(Candle, "candle", candle_data)
register_encoder(OfiUpdate, "ofi", ofi_data)
register_encoder(VpinUpdate, "vpin", vpin_data)
register_encoder(OptionTicker, "option_ticker", option_ticker_data)
register_encoder(OptionGreeks, "greeks", option_greeks_data)
