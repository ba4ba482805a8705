"""Checked venue numbers and times: any text gives a value in range or InvalidNumber, fast."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantsaas.errors import InvalidNumber
from quantsaas.feeds.numbers import (
    checked_id,
    fast_fixed,
    fast_price,
    fast_size,
    iso_ns,
    ms_to_ns,
    seconds_text_ns,
)
from quantsaas.model import MAX_RAW, parse_fixed, parse_price, parse_size

POISONED = [
    "1e999999",
    "1E+999999999999",
    "-1e999999",
    "1e-999999",
    "9" * 5000,
    "0." + "0" * 5000 + "1",
    "NaN",
    "nan",
    "Infinity",
    "-Infinity",
    "inf",
    "sNaN",
    "",
    " ",
    "1_000",
    "0x10",
    "١٢٣",
    "92233720368.54775808",  # MAX_RAW + 1 at 8 decimals
]

number_text = st.one_of(
    st.text(max_size=30),
    st.text(alphabet="0123456789.-+eE", max_size=40),
    st.from_regex(r"-?[0-9]{1,30}(\.[0-9]{0,20})?([eE][-+]?[0-9]{1,8})?", fullmatch=True),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(POISONED),
)


@pytest.mark.parametrize("text", POISONED + ["-3", "-0.5"])
def test_poisoned_prices_are_refused_quickly_and_briefly(text: str) -> None:
    with pytest.raises(InvalidNumber) as caught:
        fast_price(text, 8)
    assert len(str(caught.value)) < 160
    with pytest.raises(InvalidNumber):
        parse_price(text, 8)


@pytest.mark.parametrize("text", ["0", "0.00000000", "0.0", "00"])
def test_a_zero_price_is_refused_and_a_zero_size_deletes(text: str) -> None:
    with pytest.raises(InvalidNumber, match="positive"):
        fast_price(text, 8)
    assert fast_size(text, 8) == 0


def test_the_raw_range_edge_is_exact() -> None:
    assert fast_size("92233720368.54775807", 8) == MAX_RAW
    assert fast_price("92233720368.54775807", 8) == MAX_RAW
    with pytest.raises(InvalidNumber, match="out of range"):
        fast_size("92233720368.54775808", 8)
    assert fast_price("92233720368.54775808", 8, limit=10**40) == MAX_RAW + 1


@settings(max_examples=500, deadline=None)
@given(text=number_text)
def test_any_text_gives_a_checked_value_or_invalid_number(text: str) -> None:
    for fast, slow, low in ((fast_price, parse_price, 1), (fast_size, parse_size, 0)):
        try:
            value = fast(text, 8)
        except InvalidNumber:
            with pytest.raises(InvalidNumber):
                slow(text, 8)
            continue
        assert low <= value <= MAX_RAW
        assert value == slow(text, 8) == parse_fixed(text, 8)
    try:
        assert fast_fixed(text, 8) == parse_fixed(text, 8)
    except InvalidNumber:
        pass


@settings(max_examples=300, deadline=None)
@given(raw=st.integers(0, MAX_RAW), scale=st.integers(0, 12))
def test_plain_text_round_trips(raw: int, scale: int) -> None:
    digits = str(raw).rjust(scale + 1, "0")
    text = f"{digits[:-scale]}.{digits[-scale:]}" if scale else digits
    assert fast_size(text, scale) == raw
    assert fast_size(text + ("000" if scale else ".000"), scale) == raw


@settings(max_examples=400, deadline=None)
@given(moment=st.datetimes(min_value=dt.datetime(1970, 1, 1), max_value=dt.datetime(2200, 1, 1)))
def test_iso_times_match_datetime_exactly(moment: dt.datetime) -> None:
    seconds = int(moment.replace(microsecond=0, tzinfo=dt.UTC).timestamp())
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    assert iso_ns(text + "Z") == iso_ns(text + "+00:00") == iso_ns(text) == seconds * 10**9
    fraction = f"{moment.microsecond:06d}"
    assert iso_ns(f"{text}.{fraction}Z") == seconds * 10**9 + moment.microsecond * 1000
    assert iso_ns(f"{text}.{fraction}123Z") == seconds * 10**9 + moment.microsecond * 1000 + 123


@settings(max_examples=400, deadline=None)
@given(text=st.one_of(st.text(max_size=45), st.from_regex(r"[0-9T:.\-+Z ]{15,35}", fullmatch=True)))
def test_any_text_as_a_time_gives_a_value_or_invalid_number(text: str) -> None:
    try:
        value = iso_ns(text)
    except InvalidNumber:
        return
    assert 0 <= value <= MAX_RAW


@pytest.mark.parametrize(
    "text",
    [
        "2021-02-29T00:00:00Z",
        "2021-13-01T00:00:00Z",
        "2021-04-17T24:00:00Z",
        "2021-04-17T16:43:37.Z",
        "2021-04-17T16:43:37.1234567890Z",
        "2021-04-17T16:43:37+01:00",
        "0001-01-01T00:00:00.000000Z",
        "2021-04-17X16:43:37Z",
        "２021-04-17T16:43:37Z",
        "2021-04-17T16:43:37.١Z",
        "2021-04-17T16:43:37" + "0" * 100,
    ],
)
def test_bad_times_are_refused(text: str) -> None:
    with pytest.raises(InvalidNumber):
        iso_ns(text)


@pytest.mark.parametrize(
    "tail", [".Z", ".1234567890Z", ".١Z", ". 12Z", ".1_2Z", ".+12Z", ".12z9", ".12+01:00", "."]
)
def test_bad_fractions_are_refused_once_their_second_is_cached(tail: str) -> None:
    head = "2021-04-17T16:43:38"
    assert iso_ns(head + ".5Z") == iso_ns(head + "Z") + 500_000_000  # the head is now cached
    assert iso_ns(head + ".000000007Z") == iso_ns(head) + 7
    with pytest.raises(InvalidNumber):
        iso_ns(head + tail)


def test_ids_and_millisecond_times_stay_within_int64() -> None:
    assert checked_id(0) == 0 and checked_id(MAX_RAW) == MAX_RAW
    assert ms_to_ns(1_633_998_512_068) == 1_633_998_512_068_000_000
    for bad in (-1, MAX_RAW + 1, 10**5000, True, 1.5, "12", None):
        with pytest.raises(InvalidNumber):
            checked_id(bad)
        with pytest.raises(InvalidNumber):
            ms_to_ns(bad)
    with pytest.raises(InvalidNumber):
        ms_to_ns(MAX_RAW // 1_000_000 + 1)


def test_epoch_seconds_text_is_exact_and_bounded() -> None:
    assert seconds_text_ns("1618678117.243818") == 1_618_678_117_243_818_000
    assert seconds_text_ns("1618678117") == 1_618_678_117_000_000_000
    for bad in ("1e9", "-1.5", "1" * 30, "1.2.3", "", "١.٢", "1618678117.1234567890"):
        with pytest.raises(InvalidNumber):
            seconds_text_ns(bad)
