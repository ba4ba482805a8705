"""Kraken v2 frames -> parsed items; numbers keep the venue's exact text, bad frames are errors."""

from __future__ import annotations

import pytest

from quantsaas.errors import ProtocolError
from quantsaas.feeds.kraken import parse
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
    assert item.update.bids == (("45283.50", "0.10000000"),)
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
        '{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[{"price":true,'
        '"qty":1}],"asks":[],"checksum":1}]}',
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


def test_v1_names_are_canonical() -> None:
    (chf,) = parse.kraken_instruments(["XBT/CHF"])
    assert chf.symbol == "BTC/CHF" and chf.native_symbol == "XBT/CHF"
