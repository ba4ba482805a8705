"""Exact decimal text -> raw integers on the client's fast path, and the fast constructors."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpers import make_instrument
from quantsaas.client.decode import MALFORMED
from quantsaas.client.exact import Codec, price_of, size_of
from quantsaas.errors import InvalidNumber
from quantsaas.model import MAX_RAW, parse_price, parse_size

TRICKY = [
    "1_0.00",
    "١٢.٠٠",
    "1.2.34",
    "+1.00",
    "-1.00",
    " 1.00",
    "1.",
    ".50",
    "1e2",
    "0x1.00",
    "1.005",
    "1.000",
    "",
    ".",
    "--1.00",
    "1,00",
    "NaN",
    "inf",
    "12.00\n",
    "²3.00",
    "1 .00",
    "1._0",
    "_1.00",
    "1.0_0",
]


@pytest.mark.parametrize("text", TRICKY)
@pytest.mark.parametrize(("parse", "model"), [(size_of, parse_size), (price_of, parse_price)])
def test_every_spelling_agrees_with_the_models_parser(
    text: str, parse: Callable[[str, int], int], model: Callable[[str, int], int]
) -> None:
    try:
        expected: int | None = model(text, 2)
    except InvalidNumber:
        expected = None
    if expected is None:
        with pytest.raises(InvalidNumber):
            parse(text, 2)
    else:
        assert parse(text, 2) == expected


@given(st.integers(0, 10**20), st.integers(0, 12))
def test_the_servers_spelling_reads_exactly(raw: int, scale: int) -> None:
    text = make_instrument(price_scale=scale).format_price(raw)
    if raw > MAX_RAW:  # beyond int64: refused, as the model refuses it
        with pytest.raises(InvalidNumber):
            size_of(text, scale)
        return
    assert size_of(text, scale) == raw
    if raw:
        assert price_of(text, scale) == raw
    text = str(Decimal(raw).scaleb(-scale))  # other spellings: the slow path
    assert size_of(text, scale) == parse_size(text, scale)


@pytest.mark.parametrize("text", ["0.00", "-1.00", "1" * 70 + ".00", "1" * 19 + ".00"])
def test_poisoned_numbers_are_refused(text: str) -> None:
    with pytest.raises(InvalidNumber):
        price_of(text, 2)
    if text != "0.00":
        with pytest.raises(InvalidNumber):
            size_of(text, 2)


@pytest.mark.parametrize("junk", [None, 12, 1.5, [], {}, True])
def test_what_is_not_text_is_malformed(junk: object) -> None:
    with pytest.raises(MALFORMED):
        size_of(junk, 2)  # type: ignore[arg-type]
    with pytest.raises(MALFORMED):
        Codec(make_instrument()).levels([[junk, "1.00000000"]])  # type: ignore[list-item]


def test_levels_read_zero_sizes_and_many_levels() -> None:
    codec = Codec(make_instrument())
    assert codec.levels([]) == ()
    rows = [["100.50", "0.00000000"], ["100.40", "1.25000000"], ["99.00", "0"]]
    assert codec.levels(rows) == ((10050, 0), (10040, 125000000), (9900, 0))
    with pytest.raises(InvalidNumber):
        codec.levels([["100.505", "1.00000000"]])
