import pytest

from helpers import make_instrument
from quantsaas.errors import InvalidNumber
from quantsaas.model import Instrument, OptionSpec


def option(kind: str = "call", strike: int = 60_000) -> Instrument:
    return Instrument(
        "deribit", "BTC", "BTC", "BTC-27SEP24-60000-C", 4, 1, 1, 1,
        option=OptionSpec("BTC/USD", 1_727_424_000_000_000_000, strike, 0, kind),
    )  # fmt: skip


def test_an_option_is_named_by_its_venue_symbol() -> None:
    instrument = option()
    assert instrument.symbol == "BTC-27SEP24-60000-C"
    assert instrument.key == ("deribit", "BTC-27SEP24-60000-C")
    assert instrument.path_symbol == "BTC-27SEP24-60000-C"
    assert instrument.option is not None and str(instrument.option.strike_decimal) == "60000"
    spot = make_instrument()
    assert spot.option is None and spot.symbol == "BTC/USD"


def test_bad_option_specs_are_refused() -> None:
    with pytest.raises(InvalidNumber, match="'call' or 'put'"):
        option(kind="straddle")
    with pytest.raises(InvalidNumber, match="strike must be positive"):
        option(strike=0)
