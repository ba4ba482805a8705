"""What a fake lists: its products, and the venues' REST market listings built from them.

Real clients load a venue's markets over REST before they subscribe (ccxt's `load_markets`), so a
fake answers those endpoints for exactly the products it serves: the simulated ones, or in replay
mode the ones named with `--symbols` plus every product the replay file mentions (found by
`scan_products`), whatever they are. Products the simulator knows get its tick and lot sizes; any
other gets 8 decimals, the most the venues' text carries.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from quantsaas.errors import ConfigError
from quantsaas.feeds.instruments import split_symbol

PRODUCT_KEYS = {
    "binance": ("s",),
    "coinbase": ("product_id",),
    "kraken": ("symbol",),
    "deribit": ("instrument_name",),
}
"""The field naming the product in each venue's frames."""

SCAN_LINES = 100_000


@dataclass(frozen=True, slots=True)
class Listing:
    native: str
    base: str
    quote: str
    price_decimals: int = 8
    size_decimals: int = 8

    @property
    def tick(self) -> str:
        return _unit(self.price_decimals)

    @property
    def lot(self) -> str:
        return _unit(self.size_decimals)


def _unit(decimals: int) -> str:
    return "1" if decimals <= 0 else "0." + "0" * (decimals - 1) + "1"


def listing(native: str, price_decimals: int = 8, size_decimals: int = 8) -> Listing:
    """A spot product named natively (`BTCUSDT`, `SKL-GBP`, `ETH/USD`)."""
    try:
        base, quote = split_symbol(native)
    except ConfigError:
        base, quote = native, ""
    return Listing(native, base, quote, price_decimals, size_decimals)


def scan_products(venue: str, path: Path) -> list[str]:
    """Every product the frames of a recorded file name, in order of first appearance (the
    first `SCAN_LINES` lines; a line that is not JSON is skipped: the replay sends it anyway)."""
    keys = PRODUCT_KEYS[venue]
    found: dict[str, None] = {}
    with path.open("rb") as lines:
        for count, line in enumerate(lines):
            if count >= SCAN_LINES:
                break
            try:
                frame = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            for value in _values(frame, keys):
                found.setdefault(value)
            if venue == "kraken" and isinstance(frame, list) and frame:
                pair = frame[-1]  # v1 frames end with the pair
                if isinstance(pair, str) and "/" in pair:
                    found.setdefault(pair)
    return list(found)


def _values(node: Any, keys: tuple[str, ...]) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in keys and isinstance(value, str) and 0 < len(value) <= 64:
                yield value
            else:
                yield from _values(value, keys)
    elif isinstance(node, list):
        for item in node:
            yield from _values(item, keys)


def binance_exchange_info(listings: Iterable[Listing], wanted: set[str] | None) -> bytes:
    """`GET /api/v3/exchangeInfo` (optionally `symbol=`/`symbols=`) for spot products."""
    symbols = []
    for item in listings:
        if wanted is not None and item.native not in wanted:
            continue
        symbols.append(
            {
                "symbol": item.native,
                "status": "TRADING",
                "baseAsset": item.base,
                "baseAssetPrecision": 8,
                "quoteAsset": item.quote,
                "quotePrecision": 8,
                "quoteAssetPrecision": 8,
                "baseCommissionPrecision": 8,
                "quoteCommissionPrecision": 8,
                "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET"],
                "icebergAllowed": True,
                "ocoAllowed": True,
                "quoteOrderQtyMarketAllowed": True,
                "isSpotTradingAllowed": True,
                "isMarginTradingAllowed": False,
                "filters": [
                    {
                        "filterType": "PRICE_FILTER",
                        "minPrice": item.tick,
                        "maxPrice": "1000000.00000000",
                        "tickSize": item.tick,
                    },
                    {
                        "filterType": "LOT_SIZE",
                        "minQty": item.lot,
                        "maxQty": "9000000.00000000",
                        "stepSize": item.lot,
                    },
                ],
                "permissions": [],
                "permissionSets": [["SPOT"]],
                "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
                "allowedSelfTradePreventionModes": ["EXPIRE_MAKER"],
            }
        )
    body = {
        "timezone": "UTC",
        "serverTime": time.time_ns() // 1_000_000,
        "rateLimits": [],
        "exchangeFilters": [],
        "symbols": symbols,
    }
    return orjson.dumps(body)


def coinbase_exchange_products(listings: Iterable[Listing]) -> bytes:
    """`GET /products` of the Exchange REST API."""
    rows = [
        {
            "id": item.native,
            "base_currency": item.base,
            "quote_currency": item.quote,
            "quote_increment": item.tick,
            "base_increment": item.lot,
            "display_name": f"{item.base}/{item.quote}",
            "min_market_funds": "1",
            "margin_enabled": False,
            "post_only": False,
            "limit_only": False,
            "cancel_only": False,
            "status": "online",
            "status_message": "",
            "trading_disabled": False,
            "fx_stablecoin": False,
            "max_slippage_percentage": "0.10000000",
            "auction_mode": False,
        }
        for item in listings
    ]
    return orjson.dumps(rows)


def coinbase_exchange_currencies(listings: Iterable[Listing]) -> bytes:
    """`GET /currencies` of the Exchange REST API (the assets of the listed products)."""
    codes = dict.fromkeys(c for item in listings for c in (item.base, item.quote) if c)
    rows = [
        {
            "id": code,
            "name": code,
            "min_size": "0.00000001",
            "status": "online",
            "message": "",
            "max_precision": "0.00000001",
            "convertible_to": [],
            "details": {"type": "crypto", "network_confirmations": 1},
            "default_network": "",
            "supported_networks": [],
        }
        for code in codes
    ]
    return orjson.dumps(rows)


def coinbase_advanced_products(listings: Iterable[Listing], product_type: str | None) -> bytes:
    """`GET /api/v3/brokerage/market/products`: spot products (no futures are listed)."""
    rows = [
        {
            "product_id": item.native,
            "price": "0",
            "base_increment": item.lot,
            "quote_increment": item.tick,
            "price_increment": item.tick,
            "quote_min_size": "1",
            "quote_max_size": "100000000",
            "base_min_size": item.lot,
            "base_max_size": "100000000",
            "base_name": item.base,
            "quote_name": item.quote,
            "status": "online",
            "is_disabled": False,
            "cancel_only": False,
            "limit_only": False,
            "post_only": False,
            "trading_disabled": False,
            "auction_mode": False,
            "product_type": "SPOT",
            "quote_currency_id": item.quote,
            "base_currency_id": item.base,
            "base_display_symbol": item.base,
            "quote_display_symbol": item.quote,
            "display_name": f"{item.base}-{item.quote}",
            "product_venue": "CBE",
        }
        for item in listings
        if product_type in (None, "", "SPOT")
    ]
    return orjson.dumps({"products": rows, "num_products": len(rows)})


def coinbase_v2_currencies(listings: Iterable[Listing], crypto: bool) -> bytes:
    """`GET /v2/currencies` (fiat) and `/v2/currencies/crypto` of the retail API."""
    codes = dict.fromkeys(c for item in listings for c in (item.base, item.quote) if c)
    fiat = {"USD", "EUR", "GBP"}
    if crypto:
        rows: list[dict[str, Any]] = [
            {"asset_id": code, "code": code, "name": code, "exponent": 8, "type": "crypto"}
            for code in codes
            if code not in fiat
        ]
    else:
        rows = [{"id": code, "name": code, "min_size": "0.01"} for code in codes if code in fiat]
    return orjson.dumps({"data": rows})


def kraken_asset_pairs(listings: Iterable[Listing]) -> bytes:
    """`GET /0/public/AssetPairs` for v2 symbols (`BTC/USD`)."""
    result = {}
    for item in listings:
        result[f"{item.base}{item.quote}"] = {
            "altname": f"{item.base}{item.quote}",
            "wsname": item.native,
            "aclass_base": "currency",
            "base": item.base,
            "aclass_quote": "currency",
            "quote": item.quote,
            "lot": "unit",
            "cost_decimals": 5,
            "pair_decimals": item.price_decimals,
            "lot_decimals": item.size_decimals,
            "lot_multiplier": 1,
            "leverage_buy": [],
            "leverage_sell": [],
            "fees": [[0, 0.26]],
            "fees_maker": [[0, 0.16]],
            "fee_volume_currency": "ZUSD",
            "margin_call": 80,
            "margin_stop": 40,
            "ordermin": item.lot,
            "costmin": "0.5",
            "tick_size": item.tick,
            "status": "online",
        }
    return orjson.dumps({"error": [], "result": result})


def kraken_assets(listings: Iterable[Listing]) -> bytes:
    """`GET /0/public/Assets`: the assets of the listed pairs."""
    codes = dict.fromkeys(c for item in listings for c in (item.base, item.quote) if c)
    result = {
        code: {
            "aclass": "currency",
            "altname": code,
            "decimals": 10,
            "display_decimals": 5,
            "status": "enabled",
        }
        for code in codes
    }
    return orjson.dumps({"error": [], "result": result})


__all__ = [
    "PRODUCT_KEYS",
    "Listing",
    "binance_exchange_info",
    "coinbase_advanced_products",
    "coinbase_exchange_currencies",
    "coinbase_exchange_products",
    "coinbase_v2_currencies",
    "kraken_asset_pairs",
    "kraken_assets",
    "listing",
    "scan_products",
]
