"""Instruments of the live venues, built from configured symbols.

Binance and Coinbase send prices and sizes as decimal text with at most 8 decimals, so every live
instrument uses scale 8 for both; tick and lot sizes are the scale's unit until instrument metadata
is fetched from the venues (not done yet).
"""

from __future__ import annotations

from collections.abc import Iterable

from quantsaas.errors import ConfigError, quote
from quantsaas.feeds.numbers import fast_fixed as fast_fixed  # its home is feeds/numbers.py
from quantsaas.model import Instrument, symbol_from_text

VENUE_SCALE = 8

_QUOTES = ("USDT", "USDC", "FDUSD", "BUSD", "TUSD", "BTC", "ETH", "BNB", "EUR", "GBP", "USD", "TRY")


def venue_instrument(venue: str, base: str, quote: str, native: str) -> Instrument:
    return Instrument(
        venue=venue,
        base=base,
        quote=quote,
        native_symbol=native,
        price_scale=VENUE_SCALE,
        size_scale=VENUE_SCALE,
        tick_size=1,
        lot_size=1,
    )


def split_symbol(text: str) -> tuple[str, str]:
    """`BTC/USDT`, `BTC-USDT` -> (BTC, USDT); a bare `BTCUSDT` is split on a known quote."""
    canonical = symbol_from_text(text)
    if "/" in canonical:
        base, _, asset = canonical.partition("/")
        if base and asset:
            return base, asset
    for asset in _QUOTES:
        if canonical.endswith(asset) and len(canonical) > len(asset):
            return canonical[: -len(asset)], asset
    raise ConfigError(
        f"cannot tell base from quote in symbol {quote(text)}; write it as BASE/QUOTE"
    )


def binance_instruments(symbols: Iterable[str]) -> tuple[Instrument, ...]:
    found = []
    for text in symbols:
        base, quote = split_symbol(text)
        found.append(venue_instrument("binance", base, quote, f"{base}{quote}"))
    return tuple(dict.fromkeys(found))


def coinbase_instruments(symbols: Iterable[str]) -> tuple[Instrument, ...]:
    """`BTC/USD` or the product id `BTC-USD` (`BTC-PERP-INTX` keeps its full id as native)."""
    found = []
    for text in symbols:
        native = text.strip().upper().replace("/", "-")
        base, _, asset = native.partition("-")
        if not base or not asset:
            raise ConfigError(f"coinbase product {quote(text)} must look like BTC-USD or BTC/USD")
        found.append(venue_instrument("coinbase", base, asset, native))
    return tuple(dict.fromkeys(found))
