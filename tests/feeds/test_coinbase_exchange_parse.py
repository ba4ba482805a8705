"""Coinbase Exchange parsers on the captured frames: exact values, books, malformed input."""

from __future__ import annotations

import json
from decimal import Decimal

import poison
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from samples_path import lines

from quantsaas.book import L2Book
from quantsaas.errors import MalformedBook, ProtocolError
from quantsaas.feeds.coinbase.exchange_parse import (
    Ack,
    Sequenced,
    VenueRefused,
    parse_frame,
    time_ns,
)
from quantsaas.feeds.instruments import coinbase_instruments
from quantsaas.model import MAX_RAW, BookDelta, BookSnapshot, Side, Ticker, Trade

PRODUCTS = ["BAND-GBP", "SKL-GBP", "NU-GBP", "SKL-BTC", "SKL-USD", "BAND-BTC", "YFI-BTC"]
PRODUCTS += ["CRV-EUR", "NMR-EUR", "DASH-BTC", "BAND-EUR", "NMR-GBP", "NU-EUR", "NU-BTC"]
INSTRUMENTS = {inst.native_symbol: inst for inst in coinbase_instruments(PRODUCTS)}
SKL = INSTRUMENTS["SKL-GBP"]


def test_time_is_exact_nanoseconds() -> None:
    assert time_ns("2021-04-17T16:43:37.078325Z") == 1618677817078325000
    assert time_ns("2023-02-09T20:32:50.714964855Z") % 1_000_000_000 == 714964855


def test_level2_file_parses_and_the_book_equals_an_independent_one() -> None:
    rows = lines("coinbase_exchange_level2.jsonl")
    items = [parse_frame(raw, INSTRUMENTS, 1) for raw in rows]
    assert isinstance(items[0], Ack) and items[0].channels == ("level2",)
    assert isinstance(items[1], Sequenced) and isinstance(items[1].event, BookSnapshot)
    book = L2Book(SKL)
    book.apply_snapshot(items[1].event)
    for item in items[2:]:
        assert isinstance(item, Sequenced) and isinstance(item.event, BookDelta)
        book.apply_delta(item.event)
    snap = json.loads(rows[1])
    bids = {Decimal(p): Decimal(q) for p, q in snap["bids"]}
    asks = {Decimal(p): Decimal(q) for p, q in snap["asks"]}
    for raw in rows[2:]:
        for side, p, q in json.loads(raw)["changes"]:
            target = bids if side == "buy" else asks
            if Decimal(q) == 0:
                target.pop(Decimal(p), None)
            else:
                target[Decimal(p)] = Decimal(q)
    assert {SKL.price_decimal(p): SKL.size_decimal(s) for p, s in book.bids()} == bids
    assert {SKL.price_decimal(p): SKL.size_decimal(s) for p, s in book.asks()} == asks
    assert book.best_ask() == (57700000, 100820000000)


def test_first_update_values_are_exact() -> None:
    item = parse_frame(lines("coinbase_exchange_level2.jsonl")[2], INSTRUMENTS, 1)
    assert isinstance(item, Sequenced) and isinstance(item.event, BookDelta)
    assert item.event.asks == ((57620000, 33500000000),)
    assert item.event.ts_event == 1618677817078325000


def test_every_match_parses_with_the_aggressor_opposite_to_the_maker() -> None:
    rows = lines("coinbase_exchange_matches.jsonl")
    items = [parse_frame(raw, INSTRUMENTS, 1) for raw in rows]
    assert len(items) == 40
    for raw, item in zip(rows, items, strict=True):
        data = json.loads(raw)
        assert isinstance(item, Sequenced) and isinstance(item.event, Trade)
        assert item.sequence == data["sequence"]
        assert item.event.side is (Side.BUY if data["side"] == "sell" else Side.SELL)
        inst = item.event.instrument
        assert inst.price_decimal(item.event.price) == Decimal(data["price"])
        assert inst.size_decimal(item.event.size) == Decimal(data["size"])


def test_every_ticker_parses() -> None:
    rows = lines("coinbase_exchange_ticker.jsonl")
    for raw in rows:
        item = parse_frame(raw, INSTRUMENTS, 1)
        data = json.loads(raw)
        assert isinstance(item, Sequenced) and isinstance(item.event, Ticker)
        inst = item.event.instrument
        assert inst.price_decimal(item.event.bid) == Decimal(data["best_bid"])
        assert inst.price_decimal(item.event.ask) == Decimal(data["best_ask"])
        assert item.event.last is not None
        assert inst.price_decimal(item.event.last) == Decimal(data["price"])


def test_heartbeat_carries_the_product_sequence() -> None:
    raw = b'{"type":"heartbeat","sequence":90,"last_trade_id":20,"product_id":"SKL-GBP","time":"2014-11-07T08:19:28.464459Z"}'  # noqa: E501
    assert parse_frame(raw, INSTRUMENTS, 1) == Sequenced("SKL-GBP", 90, None)


def test_error_frame_raises_venue_refused_with_the_reason() -> None:
    raw = b'{"type":"error","message":"Failed to subscribe","reason":"level2 needs auth"}'
    with pytest.raises(VenueRefused, match="Failed to subscribe: level2 needs auth"):
        parse_frame(raw, INSTRUMENTS, 1)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"type":"l2update","product_id":',
        b'{"type":"snapshot","product_id":"SKL-GBP","asks":[["0.-10000","1"]],"bids":[]}',
        b'{"type":"l2update","product_id":"SKL-GBP","changes":[["up","1","1"]],"time":"x"}',
        b'{"type":"match","product_id":"ZZZ-GBP","side":"buy","price":"1","size":"1"}',
        b"42",
    ],
)
def test_malformed_frames_raise_protocol_error(raw: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_frame(raw, INSTRUMENTS, 1)


POISON_FRAMES = [
    lines("coinbase_exchange_level2.jsonl")[1],
    lines("coinbase_exchange_level2.jsonl")[5],
    lines("coinbase_exchange_matches.jsonl")[1],
    lines("coinbase_exchange_ticker.jsonl")[0],
]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), token=poison.tokens)
def test_any_text_for_any_number_gives_a_value_or_a_protocol_error(
    data: st.DataObject, token: str
) -> None:
    frame = data.draw(st.sampled_from(POISON_FRAMES))
    path = data.draw(st.sampled_from(poison.slots(json.loads(frame))[:60]))
    raw = poison.inject(frame, path, token)
    try:
        item = parse_frame(raw, INSTRUMENTS, 1)
    except ProtocolError as exc:
        assert len(str(exc)) < 700
        return
    assert isinstance(item, Sequenced)
    assert item.sequence is None or 0 <= item.sequence <= MAX_RAW
    poison.check_value(item.event)


@pytest.mark.parametrize("token", poison.TOKENS)
def test_a_poisoned_level_of_a_snapshot_or_update_is_a_malformed_book(token: str) -> None:
    snapshot, update = (lines("coinbase_exchange_level2.jsonl")[i] for i in (1, 5))
    for raw in (
        poison.inject(snapshot, ("asks", 0, 0), token),
        poison.inject(update, ("changes", 0, 1), token),
        poison.inject(update, ("changes", 0, 2), token.replace('"0"', '"-1"')),
    ):
        with pytest.raises(ProtocolError) as caught:
            parse_frame(raw, INSTRUMENTS, 1)
        assert len(str(caught.value)) < 400
        if poison.decodes(raw):
            assert isinstance(caught.value, MalformedBook) and caught.value.symbol == "SKL-GBP"


def test_a_100_kb_product_id_is_quoted_briefly() -> None:
    raw = json.dumps({"type": "l2update", "product_id": "X" * 100_000, "changes": []})
    with pytest.raises(ProtocolError) as caught:
        parse_frame(raw.encode(), INSTRUMENTS, 1)
    assert len(str(caught.value)) < 300 and "100,000 chars" in str(caught.value)
