"""Deribit JSON-RPC frames: option names, book continuity on the recorded sample, tickers."""

from __future__ import annotations

import datetime as dt
import json

import orjson
import poison
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from samples_path import lines

from quantsaas.errors import MalformedBook, ProtocolError, SequenceGap
from quantsaas.feeds.deribit import parse
from quantsaas.feeds.deribit.book_sync import ChangeSync
from quantsaas.model import MAX_RAW, BookDelta, BookSnapshot, OptionTicker
from quantsaas.replay_raw import replay_lines

NAME = "BTC-24SEP21-8000-P"
PUT = parse.option_instrument(NAME)
INSTRUMENTS = {NAME: PUT}

TICKER = (
    '{"jsonrpc":"2.0","method":"subscription","params":{"channel":"ticker.BTC-24SEP21-8000-P.raw",'
    '"data":{"underlying_price":32366.75,"underlying_index":"BTC-24SEP21","timestamp":1626993722929,'
    '"stats":{"volume":10.1,"price_change":0.0,"low":0.001,"high":0.001},"state":"open",'
    '"settlement_price":0.0,"open_interest":729.2,"min_price":0.0001,"max_price":0.0155,'
    '"mark_price":0.00090376,"mark_iv":142.78,"last_price":0.001,"interest_rate":0.0,'
    '"instrument_name":"BTC-24SEP21-8000-P","index_price":32201.67,"greeks":{"vega":1.62145,'
    '"theta":-1.82613,"rho":-0.27934,"gamma":0.0,"delta":-0.00407},'
    '"estimated_delivery_price":32201.67,"bid_iv":133.0,"best_bid_price":0.0005,'
    '"best_bid_amount":153.1,"best_ask_price":0.0015,"best_ask_amount":94.7,"ask_iv":152.71}}}'
)


def test_option_names() -> None:
    option = PUT.option
    assert option is not None and option.kind == "put" and option.strike == 8000
    assert option.underlying == "BTC/USD" and PUT.quote == "BTC"
    expiry = dt.datetime(2021, 9, 24, 8, tzinfo=dt.UTC)
    assert option.expiry_ns == int(expiry.timestamp()) * 10**9
    linear = parse.option_instrument("MATIC_USDC-9MAR24-1d02-C")
    assert linear.quote == "USDC" and linear.option is not None
    assert (linear.option.strike, linear.option.strike_scale) == (102, 2)
    for bad in ("BTC-PERPETUAL", "BTC-24XYZ21-8000-P", "BTC-24SEP21-0-C", "BTC-24SEP21-8000-X"):
        with pytest.raises(ProtocolError):
            parse.option_instrument(bad)


def test_recorded_book_is_continuous_and_ends_as_computed_here() -> None:
    sync = ChangeSync(NAME)
    bids: dict[str, str] = {}
    asks: dict[str, str] = {}
    events = []
    for line in lines("deribit_book.jsonl"):
        item = parse.parse_frame(line, INSTRUMENTS, 0)
        if not isinstance(item, parse.BookChange):
            continue
        event = sync.on_change(item)  # raises SequenceGap on any break
        assert event is not None
        events.append(event)
        data = orjson.loads(line)["params"]["data"]
        for side, book in (("bids", bids), ("asks", asks)):
            for action, price, amount in data[side]:
                if action == "delete":
                    book.pop(repr(price), None)
                else:
                    book[repr(price)] = repr(amount)
    assert isinstance(events[0], BookSnapshot) and len(events) == 31
    assert all(isinstance(e, BookDelta) for e in events[1:])
    result = replay_lines("deribit", lines("deribit_book.jsonl"))
    assert result["gaps"] == 0 and result["books"][NAME]["valid"] is True
    final = result["books"][NAME]
    assert [(PUT.price(p), PUT.size(s)) for p, s in final["asks"]] == sorted(
        (PUT.price(p), PUT.size(s)) for p, s in asks.items()
    )[:10]
    assert [(PUT.price(p), PUT.size(s)) for p, s in final["bids"]] == [
        (PUT.price(p), PUT.size(s)) for p, s in bids.items()
    ]


def test_a_change_id_break_is_a_gap() -> None:
    frames = lines("deribit_book.jsonl")
    broken = frames[:5] + frames[6:]  # one change lost
    result = replay_lines("deribit", broken)
    assert result["gaps"] == 1 and NAME not in result["books"]
    sync = ChangeSync(NAME)
    first = parse.parse_frame(frames[1], INSTRUMENTS, 0)
    third = parse.parse_frame(frames[3], INSTRUMENTS, 0)
    assert isinstance(first, parse.BookChange) and isinstance(third, parse.BookChange)
    sync.on_change(first)
    with pytest.raises(SequenceGap, match="prev_change_id"):
        sync.on_change(third)
    assert sync.on_change(third) is None  # waits for a new snapshot


def test_ticker_becomes_an_option_ticker() -> None:
    ticker = parse.parse_frame(TICKER, INSTRUMENTS, 5)
    assert isinstance(ticker, OptionTicker)
    assert ticker.mark_price == PUT.price("0.00090376") and ticker.mark_iv == 142.78
    assert ticker.best_bid_price == PUT.price("0.0005") and ticker.ask_iv == 152.71
    assert ticker.underlying_index == "BTC-24SEP21" and ticker.index_price == 32201.67
    assert ticker.open_interest == PUT.size("729.2") and ticker.delta == -0.00407
    assert ticker.ts_event == 1626993722929 * 10**6 and ticker.ts_recv == 5


def test_control_frames_and_errors() -> None:
    beat = '{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"test_request"}}'
    assert parse.parse_frame(beat, INSTRUMENTS, 0) == parse.Heartbeat(True)
    error = '{"jsonrpc":"2.0","id":1,"error":{"code":10028,"message":"too_many_requests"}}'
    assert parse.parse_frame(error, INSTRUMENTS, 0) == parse.RpcError(1, 10028, "too_many_requests")
    for bad in (
        "{",
        '{"jsonrpc":"2.0"}',
        '{"jsonrpc":"2.0","method":"subscription","params":{"channel":"book.X.100ms","data":{}}}',
        TICKER.replace('"mark_price":0.00090376', '"mark_price":true'),
        TICKER.replace('"mark_price":0.00090376', '"mark_price":0.000903761'),
    ):
        with pytest.raises(ProtocolError):
            parse.parse_frame(bad, INSTRUMENTS, 0)


DERIBIT_TRADES = (
    '{"jsonrpc":"2.0","method":"subscription","params":{"channel":"trades.BTC-24SEP21-8000-P.100ms",'
    '"data":[{"trade_seq":1,"trade_id":"ETH-1","timestamp":1626993724318,"price":0.0015,'
    '"amount":2.6,"direction":"buy","instrument_name":"BTC-24SEP21-8000-P","iv":140.1}]}}'
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), token=poison.tokens)
def test_any_text_for_any_number_gives_a_value_or_a_protocol_error(
    data: st.DataObject, token: str
) -> None:
    frames = [*lines("deribit_book.jsonl")[1:4], TICKER.encode(), DERIBIT_TRADES.encode()]
    frame = data.draw(st.sampled_from(frames))
    path = data.draw(st.sampled_from(poison.slots(json.loads(frame))))
    raw = poison.inject(frame, path, token)
    try:
        item = parse.parse_frame(raw, INSTRUMENTS, 0)
    except ProtocolError as exc:
        assert len(str(exc)) < 700
        return
    if isinstance(item, parse.BookChange):
        assert 0 <= item.change_id <= MAX_RAW
        poison.check_value(item.event)
    for each in item if isinstance(item, list) else [item]:
        poison.check_value(each)


@pytest.mark.parametrize("token", poison.TOKENS)
def test_a_poisoned_book_level_is_a_malformed_book(token: str) -> None:
    raw = poison.inject(lines("deribit_book.jsonl")[2], ("params", "data", "asks", 0, 1), token)
    with pytest.raises(ProtocolError) as caught:
        parse.parse_frame(raw, INSTRUMENTS, 0)
    assert len(str(caught.value)) < 400
    if poison.decodes(raw):
        assert isinstance(caught.value, MalformedBook) and caught.value.symbol == NAME
