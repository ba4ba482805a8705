import gc
import pickle
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpers import make_instrument
from quantsaas.errors import InvalidNumber
from quantsaas.model import (
    BookDelta,
    Instrument,
    Side,
    Trade,
    decimal_to_raw,
    format_fixed,
    parse_fixed,
    scale_of,
    symbol_from_text,
    symbol_to_path,
)


@pytest.mark.parametrize(
    ("text", "raw"),
    [("0.35130000", 35_130_000), ("0.0", 0), ("27650.1", 27_650_1), ("7", 7)],
)
def test_venue_text_round_trips_exactly_at_its_own_scale(text: str, raw: int) -> None:
    scale = scale_of(text)
    assert parse_fixed(text, scale) == raw
    assert format_fixed(raw, scale) == text


def test_parse_at_a_finer_scale_pads_and_at_a_coarser_scale_drops_only_zeros() -> None:
    assert parse_fixed("27650.1", 8) == 2_765_010_000_000
    assert parse_fixed("0.35130000", 4) == 3513
    with pytest.raises(InvalidNumber, match="more than 2 decimals"):
        parse_fixed("0.351", 2)


def test_the_classic_float_trap_stays_exact() -> None:
    total = parse_fixed("0.1", 8) + parse_fixed("0.2", 8)
    assert format_fixed(total, 8) == "0.30000000"
    assert total == parse_fixed("0.3", 8)


@pytest.mark.parametrize("bad", ["", "-", ".", "abc", "1.2.3", "1,5", "nan", "inf", "0x10", " "])
def test_garbage_is_rejected_with_a_clear_error(bad: str) -> None:
    with pytest.raises(InvalidNumber):
        parse_fixed(bad, 8)


def test_scientific_notation_is_parsed_exactly() -> None:
    assert parse_fixed("1e-8", 8) == 1
    assert parse_fixed("1.5E+3", 2) == 150_000
    with pytest.raises(InvalidNumber):
        parse_fixed("1e-9", 8)


def test_negative_values_and_zero_spellings() -> None:
    assert parse_fixed("-1.25", 2) == -125
    assert format_fixed(-125, 2) == "-1.25"
    assert format_fixed(-5, 2) == "-0.05"
    for zero in ("0", "0.0", "0.00000000", "-0.0", "+0"):
        assert parse_fixed(zero, 8) == 0


@given(raw=st.integers(min_value=-(10**20), max_value=10**20), scale=st.integers(0, 12))
def test_format_then_parse_is_identity(raw: int, scale: int) -> None:
    assert parse_fixed(format_fixed(raw, scale), scale) == raw


@given(value=st.decimals(allow_nan=False, allow_infinity=False, places=6))
def test_decimal_and_text_paths_agree(value: Decimal) -> None:
    assert decimal_to_raw(value, 6) == parse_fixed(format(value, "f"), 6)


def test_instrument_formats_at_its_precision_and_checks_grids() -> None:
    instrument = Instrument("sim", "ETH", "USD", "ETH-USD", 2, 8, tick_size=5, lot_size=1000)
    assert instrument.symbol == "ETH/USD"
    assert instrument.key == ("sim", "ETH/USD")
    assert instrument.path_symbol == "ETH-USD"
    assert instrument.format_price(instrument.price("3012.3")) == "3012.30"
    assert instrument.price_decimal(301230) == Decimal("3012.30")
    assert instrument.on_tick_grid(301230) and not instrument.on_tick_grid(301231)
    assert instrument.on_lot_grid(2000) and not instrument.on_lot_grid(2500)


def test_instrument_refuses_non_positive_grid() -> None:
    with pytest.raises(InvalidNumber):
        Instrument("sim", "ETH", "USD", "ETH-USD", 2, 8, tick_size=0, lot_size=1)


def test_symbols_have_one_canonical_form() -> None:
    assert symbol_from_text("btc-usd") == "BTC/USD"
    assert symbol_from_text(" BTC/USD ") == "BTC/USD"
    assert symbol_to_path("BTC/USD") == "BTC-USD"


def test_market_events_are_frozen_values_outside_the_garbage_collector() -> None:
    inst = make_instrument()
    delta = BookDelta(inst, ((101, 2),), (), 5, 6, 7)
    same = BookDelta(inst, ((101, 2),), (), 5, 6, 7)
    assert delta == same and hash(delta) == hash(same) and delta is not same
    assert delta != BookDelta(inst, ((101, 3),), (), 5, 6, 7)
    assert repr(delta).startswith("BookDelta(instrument=Instrument(")
    with pytest.raises(AttributeError):
        delta.sequence = 9  # type: ignore[misc]
    assert not gc.is_tracked(delta)  # no cycles possible: nothing for the collector to scan
    trade = Trade(inst, 100, 2, Side.SELL, "t1", 3, 4)
    assert pickle.loads(pickle.dumps(trade)) == trade
    match trade:
        case Trade(_, price, size, side):
            assert (price, size, side) == (100, 2, Side.SELL)
        case _:
            pytest.fail("Trade lost its positional match pattern")
