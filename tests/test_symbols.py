"""The one resolution rule: any listed name of an instrument names it, nothing is rewritten."""

from __future__ import annotations

import pytest

from quantsaas.errors import UnknownInstrument
from quantsaas.feeds.deribit.parse import option_instrument
from quantsaas.feeds.instruments import binance_instruments, coinbase_instruments
from quantsaas.feeds.kraken.parse import kraken_instruments
from quantsaas.feeds.simulator import default_instruments
from quantsaas.model import Instrument
from quantsaas.symbols import ambiguous, chains, resolve

OPTION = option_instrument("BTC-5DEC26-48000-C")
PUT = option_instrument("BTC-5DEC26-48000-P")
LINEAR = option_instrument("XRP_USDC-30JUN23-0d625-C")
PERP, SPOT = coinbase_instruments(["BTC-PERP-INTX", "BTC-USD"])
BINANCE = binance_instruments(["BTC/USDT"])
KRAKEN = kraken_instruments(["BTC/USD"])
EVERY: tuple[Instrument, ...] = (
    *default_instruments(),
    *BINANCE,
    PERP,
    SPOT,
    *KRAKEN,
    OPTION,
    PUT,
    LINEAR,
)


@pytest.mark.parametrize("instrument", EVERY, ids=lambda i: f"{i.venue}:{i.symbol}")
def test_every_listed_name_names_exactly_its_instrument(instrument: Instrument) -> None:
    names = {instrument.symbol, instrument.path_symbol, instrument.native_symbol}
    for name in names | {n.lower() for n in names} | {f" {instrument.path_symbol} "}:
        assert resolve(EVERY, name, instrument.venue) == [instrument], name


def test_names_with_dashes_are_not_rewritten() -> None:
    # the old rule turned every "-" into "/": BTC/5DEC26/48000/C, BTC/PERP/INTX
    assert OPTION.path_symbol == OPTION.symbol == "BTC-5DEC26-48000-C"
    assert resolve(EVERY, "BTC-5DEC26-48000-C") == [OPTION]
    assert PERP.symbol == "BTC/PERP-INTX" and PERP.path_symbol == "BTC-PERP-INTX"
    assert resolve(EVERY, "BTC-PERP-INTX") == [PERP]
    assert resolve(EVERY, "xrp_usdc-30jun23-0d625-c") == [LINEAR]
    with pytest.raises(UnknownInstrument):
        resolve(EVERY, "BTC/5DEC26/48000/C")


def test_a_pair_names_every_venue_and_a_native_name_one() -> None:
    assert [i.venue for i in resolve(EVERY, "BTC-USD")] == ["sim", "coinbase", "kraken"]
    assert [i.venue for i in resolve(EVERY, "btc/usd")] == ["sim", "coinbase", "kraken"]
    assert resolve(EVERY, "BTCUSDT") == list(BINANCE)
    assert resolve(EVERY, "BTC-USDT") == list(BINANCE)


def test_canonical_names_win_over_native_ones() -> None:
    # a venue whose native spelling of ETH/USDC is "ETH-USD" must not take ETH-USD from the rest
    odd = Instrument("odd", "ETH", "USDC", "ETH-USD", 2, 8, 1, 1)
    pool = (*default_instruments(), odd)
    assert [i.key for i in resolve(pool, "ETH-USD")] == [("sim", "ETH/USD")]
    assert resolve(pool, "ETH-USD", "odd") == [odd]


def test_unknown_names_raise_with_a_bounded_quote() -> None:
    with pytest.raises(UnknownInstrument, match="DOGE/USD"):
        resolve(EVERY, "DOGE/USD")
    with pytest.raises(UnknownInstrument, match="on venue 'binance'"):
        resolve(EVERY, "BTC/USD", "binance")
    with pytest.raises(UnknownInstrument) as caught:
        resolve(EVERY, "X" * 100_000)
    assert len(str(caught.value)) < 400 and "100,000 chars" in str(caught.value)


def test_chains_are_named_by_underlying_or_by_any_option() -> None:
    assert chains(EVERY, "BTC-USD") == [("deribit", "BTC/USD")]
    assert chains(EVERY, "btc/usd", "deribit") == [("deribit", "BTC/USD")]
    assert chains(EVERY, "BTC-5DEC26-48000-P") == [("deribit", "BTC/USD")]
    assert chains(EVERY, "XRP-USD") == [("deribit", "XRP/USD")]
    assert chains(EVERY, "ETH-USD") == []
    assert chains(EVERY, "BTC-USD", "sim") == []


def test_ambiguous_path_symbols_are_found() -> None:
    assert ambiguous(EVERY) == []
    one = Instrument("x", "A-B", "C", "AB_C", 2, 8, 1, 1)
    other = Instrument("x", "A", "B-C", "A_BC", 2, 8, 1, 1)
    assert ambiguous((one, other)) == [("x", "A-B-C")]
    assert ambiguous((one, Instrument("y", "A", "B-C", "A_BC", 2, 8, 1, 1))) == []
