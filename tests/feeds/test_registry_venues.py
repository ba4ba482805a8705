"""`build_feeds` for kraken and deribit, and the consolidated settings."""

from __future__ import annotations

import pytest

from quantsaas.config import Settings
from quantsaas.errors import ConfigError
from quantsaas.feeds.deribit.feed import DeribitFeed
from quantsaas.feeds.kraken.feed import KrakenFeed
from quantsaas.feeds.registry import build_feeds


def test_kraken_and_deribit_from_settings() -> None:
    settings = Settings(
        feeds=("kraken", "deribit"),
        kraken_symbols=("BTC-USD", "XBT/EUR"),
        kraken_depth=25,
        deribit_instruments=("BTC-27DEC26-60000-C", "ETH-27DEC26-3000-P"),
    )
    kraken, deribit = build_feeds(settings)
    assert isinstance(kraken, KrakenFeed) and kraken.depth == 25
    assert [i.symbol for i in kraken.instruments] == ["BTC/USD", "BTC/EUR"]
    assert isinstance(deribit, DeribitFeed) and len(deribit.instruments) == 2
    merged = Settings(consolidated_quote_equivalence="USD, USDT")  # type: ignore[arg-type]
    assert merged.consolidated_quote_equivalence == ("USD", "USDT")


def test_bad_settings_are_clear_errors() -> None:
    with pytest.raises(ConfigError, match="not an option name"):
        build_feeds(Settings(feeds=("deribit",), deribit_instruments=("BTC-PERPETUAL",)))
    with pytest.raises(ConfigError, match="cannot fetch"):
        build_feeds(Settings(feeds=("deribit",), deribit_rest_url="http://127.0.0.1:9"))
    with pytest.raises(ConfigError, match="depth"):
        KrakenFeed([], depth=7)
