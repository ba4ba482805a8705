"""Coinbase Advanced Trade parsers on the frames quoted in the research notes."""

from __future__ import annotations

import json

import poison
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from samples_path import lines

from quantsaas.errors import MalformedBook, ProtocolError
from quantsaas.feeds.coinbase.advanced_parse import parse_frame
from quantsaas.feeds.coinbase.exchange_parse import VenueRefused
from quantsaas.feeds.instruments import coinbase_instruments
from quantsaas.model import MAX_RAW, BookDelta, BookSnapshot, Side, Ticker, Trade

(PERP,) = coinbase_instruments(["BTC-PERP-INTX"])
INSTRUMENTS = {"BTC-PERP-INTX": PERP}


def test_instrument_keeps_the_native_product_id() -> None:
    assert PERP.native_symbol == "BTC-PERP-INTX"


def test_every_quoted_frame_parses_with_exact_values() -> None:
    envelopes = [
        parse_frame(raw, INSTRUMENTS, 7) for raw in lines("coinbase_advanced_quoted.jsonl")
    ]
    assert [e.sequence_num for e in envelopes] == [1, 2, 3, 4, 5, 6]
    assert envelopes[0].events == () and envelopes[5].events == ()
    ((_, snapshot),) = envelopes[1].events
    assert isinstance(snapshot, BookSnapshot)
    assert snapshot.bids == ((7994390000000, 301050000), (7994380000000, 50000000))
    assert snapshot.asks == ((7994400000000, 4800000), (7994410000000, 120000000))
    ((_, update),) = envelopes[2].events
    assert isinstance(update, BookDelta)
    assert update.bids == ((7994390000000, 0),) and update.asks == ((7994450000000, 200000000),)
    ((_, trade),) = envelopes[3].events
    assert isinstance(trade, Trade)
    assert (trade.price, trade.size, trade.side, trade.trade_id) == (
        6890050000000,
        150000,
        Side.SELL,
        "995098700",
    )
    ((_, ticker),) = envelopes[4].events
    assert isinstance(ticker, Ticker)
    assert (ticker.bid, ticker.ask, ticker.last) == (6890000000000, 6890100000000, 6890050000000)


def test_trade_snapshot_on_subscribe_is_skipped() -> None:
    raw = (
        b'{"channel":"market_trades","timestamp":"2026-04-07T14:30:02Z","sequence_num":9,'
        b'"events":[{"type":"snapshot","trades":[{"trade_id":"1","product_id":"BTC-PERP-INTX",'
        b'"price":"1","size":"1","side":"BUY","time":"2026-04-07T14:30:02Z"}]}]}'
    )
    assert parse_frame(raw, INSTRUMENTS, 1).events == ()


def test_error_and_malformed_frames() -> None:
    with pytest.raises(VenueRefused, match="failure to subscribe"):
        parse_frame(b'{"type":"error","message":"failure to subscribe"}', INSTRUMENTS, 1)
    with pytest.raises(ProtocolError):
        parse_frame(b'{"channel":"l2_data","sequence_num":1,"events":[{"type":"update"}]}', {}, 1)
    with pytest.raises(ProtocolError):
        parse_frame(b'{"channel":"l2_data"', INSTRUMENTS, 1)


QUOTED = lines("coinbase_advanced_quoted.jsonl")


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), token=poison.tokens)
def test_any_text_for_any_number_gives_a_value_or_a_protocol_error(
    data: st.DataObject, token: str
) -> None:
    frame = data.draw(st.sampled_from(QUOTED[1:5]))
    path = data.draw(st.sampled_from(poison.slots(json.loads(frame))))
    raw = poison.inject(frame, path, token)
    try:
        envelope = parse_frame(raw, INSTRUMENTS, 7)
    except ProtocolError as exc:
        assert len(str(exc)) < 700
        return
    assert 0 <= envelope.sequence_num <= MAX_RAW
    for _, event in envelope.events:
        poison.check_value(event)


@pytest.mark.parametrize("token", poison.TOKENS)
def test_a_poisoned_level2_price_is_a_malformed_book(token: str) -> None:
    for frame in QUOTED[1:3]:
        raw = poison.inject(frame, ("events", 0, "updates", 0, "price_level"), token)
        with pytest.raises(ProtocolError) as caught:
            parse_frame(raw, INSTRUMENTS, 7)
        assert len(str(caught.value)) < 400
        if poison.decodes(raw):
            assert isinstance(caught.value, MalformedBook)
            assert caught.value.symbol == "BTC-PERP-INTX"


def test_the_typed_l2_path_equals_the_general_path() -> None:
    from quantsaas.feeds.coinbase.advanced_parse import parse_message

    for raw in QUOTED[1:3]:
        typed = parse_frame(raw, INSTRUMENTS, 7)
        assert typed == parse_message(json.loads(raw), INSTRUMENTS, 7)
        assert typed.events and parse_frame(raw.decode(), INSTRUMENTS, 7) == typed


S = 1788746279 * 10**9
"""2026-09-07T01:57:59Z in ns (calendar.timegm)."""


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        ("2026-09-07T01:57:59Z", S),  # no fraction
        ("2026-09-07T01:57:59.5Z", S + 500_000_000),
        ("2026-09-07T01:57:59.123456789Z", S + 123_456_789),
        ("2026-09-07T01:57:59.123+00:00", S + 123_000_000),
        ("2026-09-07T01:57:59.12", S + 120_000_000),  # no zone: UTC
        ("2031-01-02T03:04:05.000001Z", 1925089445 * 10**9 + 1_000),  # a head seen first here
        ("2026-09-07T01:57:59.1234567890Z", None),  # ten digits
        ("2026-09-07T01:57:59.1_2Z", None),
        ("2026-09-07T01:57:59.\u0661\u0662Z", None),  # Arabic-Indic digits: `int` takes them
        ("2026-09-07T01:57:59. 12Z", None),
        ("2026-02-30T01:57:59.12Z", None),
    ],
)
def test_a_frame_time_is_read_exactly_or_the_frame_refused(
    stamp: str, expected: int | None
) -> None:
    """The typed path reads a frame's time exactly, as the general path does; a frame whose
    time is not one is left by the typed path and refused by the general one."""
    from quantsaas.feeds.coinbase.advanced_parse import parse_message, typed_l2

    frame = json.loads(QUOTED[2])
    frame["timestamp"] = stamp
    raw = json.dumps(frame, separators=(",", ":"), ensure_ascii=False).encode()
    typed = typed_l2(raw, INSTRUMENTS, 7)
    if expected is None:
        assert typed is None
        with pytest.raises(ProtocolError):
            parse_message(json.loads(raw), INSTRUMENTS, 7)
        return
    assert typed is not None, "a valid timestamp left the typed path"
    (book,) = typed[1]
    assert book.ts_event == expected
    general = parse_message(json.loads(raw), INSTRUMENTS, 7)
    assert (typed[0], tuple(typed[1])) == (
        general.sequence_num,
        tuple(e for _, e in general.events),
    )
