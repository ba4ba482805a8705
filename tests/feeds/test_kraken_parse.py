"""Kraken v2 frames -> parsed items; numbers keep the venue's exact text, bad frames are errors."""

from __future__ import annotations

import json

import poison
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from samples_path import lines

from quantsaas.errors import MalformedBook, ProtocolError
from quantsaas.feeds.kraken import parse
from quantsaas.feeds.kraken.book import BookUpdate, KrakenBook, TextLevel
from quantsaas.model import Side

(BTC,) = parse.kraken_instruments(["BTC/USD"])
INSTRUMENTS = {"BTC/USD": BTC}


def one(raw: str) -> object:
    (item,) = parse.parse_frame(raw, INSTRUMENTS, 7)
    return item


def test_numbers_keep_their_text() -> None:
    item = one(
        '{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[{"price":45283.50,'
        '"qty":0.10000000}],"asks":[],"checksum":1,"timestamp":"2025-05-06T09:17:26.208075Z"}]}'
    )
    assert isinstance(item, parse.BookMessage) and not item.snapshot
    assert item.update.bids == [TextLevel("45283.50", "0.10000000")]
    assert item.update.ts_event == 1746523046208075000


def test_control_frames() -> None:
    status = one(
        '{"channel":"status","type":"update","data":[{"version":"2.0.10","system":"maintenance",'
        '"api_version":"v2","connection_id":18125794168470749634}]}'
    )
    assert status == parse.Status("maintenance")
    assert one('{"channel":"heartbeat"}') == parse.Heartbeat()
    refused = one(
        '{"error":"Currency pair not supported","method":"subscribe","success":false,"req_id":4}'
    )
    assert refused == parse.Ack("subscribe", False, "Currency pair not supported", None)
    assert one('{"method":"pong","req_id":101}') == parse.Ack("pong", True, None, None)


def test_trade_and_ticker() -> None:
    trade = one(
        '{"channel":"trade","type":"update","data":[{"symbol":"BTC/USD","side":"sell",'
        '"price":105944.2,"qty":0.00100000,"ord_type":"limit","trade_id":4665846,'
        '"timestamp":"2023-09-25T07:48:36.925533Z"}]}'
    )
    assert trade.side is Side.SELL and trade.price == BTC.price("105944.2")  # type: ignore[attr-defined]
    assert trade.trade_id == "4665846"  # type: ignore[attr-defined]
    ticker = one(
        '{"channel":"ticker","type":"snapshot","data":[{"symbol":"BTC/USD","bid":105944.20,'
        '"bid_qty":2.5,"ask":105944.30,"ask_qty":3.2,"last":105899.40,"volume":163.28908096}]}'
    )
    assert ticker.ask == BTC.price("105944.3") and ticker.ts_event == 7  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "raw",
    [
        '{"channel":"book","type":"update","data":[{',
        "[1, 2]",
        '{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[],"asks":[],'
        '"checksum":"12"}]}',
        '{"channel":"trade","type":"update","data":[{"symbol":"BTC/USD","side":"up","price":1,'
        '"qty":1,"trade_id":1,"timestamp":"2023-09-25T07:48:36Z"}]}',
        '{"channel":"trade","type":"update","data":[{"symbol":"BTC/USD","side":"buy","price":"x",'
        '"qty":1,"trade_id":1,"timestamp":"2023-09-25T07:48:36Z"}]}',
        '{"no_channel":1}',
    ],
)
def test_bad_frames_are_protocol_errors(raw: str) -> None:
    with pytest.raises(ProtocolError):
        parse.parse_frame(raw, INSTRUMENTS, 0)


@pytest.mark.parametrize("field", ["price", "qty"])
@pytest.mark.parametrize("value", ["true", "false", "null", '"x"', "{}", "[1]", "-1.5", "1e999"])
def test_a_typed_level_that_is_no_number_is_a_malformed_book_when_applied(
    field: str, value: str
) -> None:
    """The typed parser hands levels on as decoded; the book checks each number as it converts
    it (`True == 1` must not find the cached entry of the integer 1)."""
    level = {"price": "45283.5", "qty": "0.1"} | {field: value}
    raw = (
        '{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[{"price":'
        f'{level["price"]},"qty":{level["qty"]}}}],"asks":[],"checksum":1}}]}}'
    )
    book = KrakenBook(BTC, 10, verify=False)
    ints = [TextLevel(1, 1), TextLevel(45283, 0)]  # integers seen (and valid) first
    book.on_snapshot(BookUpdate(ints, [TextLevel("45284.0", "1")], None, 0), 0)
    try:
        (item,) = parse.parse_frame(raw, INSTRUMENTS, 0)
    except ProtocolError:
        return  # the decoder refused it (a number beyond float range is still text)
    assert isinstance(item, parse.BookMessage)
    with pytest.raises(MalformedBook, match="BTC/USD: bad level"):
        book.on_update(item.update, 0)
    assert not book.synced


def test_v1_names_are_canonical() -> None:
    (chf,) = parse.kraken_instruments(["XBT/CHF"])
    assert chf.symbol == "BTC/CHF" and chf.native_symbol == "XBT/CHF"


TRADE = (
    '{"channel":"trade","type":"update","data":[{"symbol":"BTC/USD","side":"sell",'
    '"price":105944.2,"qty":0.00100000,"ord_type":"limit","trade_id":4665846,'
    '"timestamp":"2023-09-25T07:48:36.925533Z"}]}'
)
TICKER = (
    '{"channel":"ticker","type":"snapshot","data":[{"symbol":"BTC/USD","bid":105944.20,'
    '"bid_qty":2.5,"ask":105944.30,"ask_qty":3.2,"last":105899.40,"volume":163.28908096,'
    '"timestamp":"2022-12-25T09:30:59.123456Z"}]}'
)
(ETH,) = parse.kraken_instruments(["ETH/USD"])
BOOKS = {"BTC/USD": BTC, "ETH/USD": ETH}
SNAPSHOT, UPDATE = lines("kraken_v2_book.jsonl")[-2:]


def _parsed_and_applied(raw: bytes) -> list[object]:
    """Parse, and apply book messages to a book that took the real snapshot first."""
    out: list[object] = []
    for item in parse.parse_frame(raw, BOOKS, 7):
        if isinstance(item, parse.BookMessage):
            book = KrakenBook(BOOKS[item.symbol], 10, verify=False)
            if not item.snapshot:
                (first,) = parse.parse_frame(SNAPSHOT, BOOKS, 7)
                assert isinstance(first, parse.BookMessage)
                book.on_snapshot(first.update, 7)
                out.append(book.on_update(item.update, 7))
            else:
                out.append(book.on_snapshot(item.update, 7))
        else:
            out.append(item)
    return out


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), token=poison.tokens)
def test_any_text_for_any_number_gives_a_value_or_a_protocol_error(
    data: st.DataObject, token: str
) -> None:
    frame = data.draw(st.sampled_from([SNAPSHOT, UPDATE, TRADE.encode(), TICKER.encode()]))
    path = data.draw(st.sampled_from(poison.slots(json.loads(frame))))
    raw = poison.inject(frame, path, token)
    try:
        items = _parsed_and_applied(raw)
    except ProtocolError as exc:
        assert len(str(exc)) < 700
        return
    for item in items:
        poison.check_value(item)


@pytest.mark.parametrize("token", [t for t in poison.TOKENS if not t.startswith('"')])
def test_a_poisoned_book_level_is_a_malformed_book(token: str) -> None:
    raw = poison.inject(UPDATE, ("data", 0, "asks", 1, "price"), token)
    with pytest.raises(ProtocolError) as caught:
        _parsed_and_applied(raw)
    assert len(str(caught.value)) < 400
    if poison.decodes(raw) and token not in ("null", "true", "[]", "{}"):
        assert isinstance(caught.value, MalformedBook) and caught.value.symbol == "ETH/USD"


def test_a_joke_ask_beyond_the_raw_range_stays_for_the_checksum_but_is_not_published() -> None:
    (first,) = parse.parse_frame(SNAPSHOT, BOOKS, 7)
    assert isinstance(first, parse.BookMessage)
    book = KrakenBook(ETH, 25, verify=False)
    book.on_snapshot(first.update, 7)
    far = BookUpdate([], [TextLevel("9999999997.00000", "1.00000000")], None, 7)
    delta = book.on_update(far, 8)
    assert delta is not None and delta.asks == () and book.withheld == 1
    _, asks = book.top(20)
    assert ("9999999997.00000", "1.00000000") in asks
