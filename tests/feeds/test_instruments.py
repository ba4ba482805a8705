"""Live-venue instruments and the fast decimal path, checked against model.parse_fixed."""

from __future__ import annotations

import pytest

from quantsaas.errors import ConfigError, InvalidNumber
from quantsaas.feeds.instruments import (
    binance_instruments,
    coinbase_instruments,
    fast_fixed,
    split_symbol,
)
from quantsaas.model import parse_fixed


@pytest.mark.parametrize(
    "text",
    [
        "0.35130000",
        "0.5762",
        "985",
        "0",
        "0.0",
        "0.00000000",
        "14.7775",
        "1e3",
        "00.10",
        "123.",
        "-1",
    ],
)
def test_fast_fixed_agrees_with_parse_fixed(text: str) -> None:
    assert fast_fixed(text, 8) == parse_fixed(text, 8)


@pytest.mark.parametrize("text", ["0.123456789", "", ".", "1.2.3", "0.-10000", "１", "1_0"])
def test_fast_fixed_refuses_what_parse_fixed_refuses(text: str) -> None:
    with pytest.raises(InvalidNumber):
        parse_fixed(text, 8)
    with pytest.raises((InvalidNumber, ValueError)):
        fast_fixed(text, 8)


def test_symbols_split_and_native_forms() -> None:
    assert split_symbol("BTCUSDT") == ("BTC", "USDT") and split_symbol("eth-usd") == ("ETH", "USD")
    (btc,) = binance_instruments(["btc/usdt"])
    assert (btc.symbol, btc.native_symbol, btc.venue) == ("BTC/USDT", "BTCUSDT", "binance")
    (eth,) = coinbase_instruments(["ETH/USD"])
    assert (eth.symbol, eth.native_symbol) == ("ETH/USD", "ETH-USD")
    with pytest.raises(ConfigError):
        split_symbol("XYZ")
    with pytest.raises(ConfigError):
        coinbase_instruments(["BTC"])
