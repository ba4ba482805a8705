"""Binance parsers on the captured frames: exact values, every frame, malformed input."""

from __future__ import annotations

import json
from decimal import Decimal

import poison
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from samples_path import SAMPLES, lines

from quantsaas.errors import MalformedBook, ProtocolError
from quantsaas.feeds.binance.book_sync import DepthSync
from quantsaas.feeds.binance.parse import (
    Control,
    DepthDiff,
    ServerShutdown,
    parse_depth_snapshot,
    parse_frame,
    parse_message,
)
from quantsaas.feeds.instruments import binance_instruments
from quantsaas.model import MAX_RAW, BookDelta, BookSnapshot, Side, Ticker, Trade

NKN, BNB, LRC = binance_instruments(["NKN/USDT", "BNB/BTC", "LRC/BTC"])
BY_NATIVE = {inst.native_symbol: inst for inst in (NKN, BNB, LRC)}
RECV = 123


def test_depth_frame_parses_to_exact_integers() -> None:
    diff = parse_frame(lines("binance_depth.jsonl")[0], BY_NATIVE, RECV)
    assert isinstance(diff, DepthDiff)
    assert (diff.first_id, diff.last_id) == (499869750, 499869752)
    assert diff.delta.bids[0] == (35130000, 619500000000)
    assert diff.delta.asks == ()
    assert diff.delta.ts_event == 1633998512068 * 1_000_000
    assert diff.delta.ts_recv == RECV


def test_every_depth_frame_parses_and_matches_the_json() -> None:
    for raw in lines("binance_depth.jsonl"):
        diff = parse_frame(raw, BY_NATIVE, RECV)
        data = json.loads(raw)["data"]
        assert isinstance(diff, DepthDiff)
        assert diff.first_id == data["U"] and diff.last_id == data["u"]
        expect_bids = [(NKN.price(p), NKN.size(q)) for p, q in data["b"]]
        assert list(diff.delta.bids) == expect_bids
        assert len(diff.delta.asks) == len(data["a"])


def test_trade_frames_map_maker_flag_to_aggressor_side() -> None:
    first, second = (parse_frame(raw, BY_NATIVE, RECV) for raw in lines("binance_trade.jsonl"))
    assert isinstance(first, Trade) and isinstance(second, Trade)
    assert (first.price, first.size, first.side) == (426990, 3382000000, Side.BUY)
    assert first.trade_id == "40756030" and first.ts_event == 1554076800940 * 1_000_000
    assert second.side is Side.SELL and second.price == 219650


def test_agg_trade_frames_use_the_aggregate_id() -> None:
    nkn, lrc = (parse_frame(raw, BY_NATIVE, RECV) for raw in lines("binance_aggTrade.jsonl"))
    assert isinstance(nkn, Trade) and isinstance(lrc, Trade)
    assert (nkn.trade_id, nkn.price, nkn.size) == ("15683430", 35280000, 5800000000)
    assert (lrc.instrument, lrc.price, lrc.size) == (LRC, 638, 17700000000)


def test_every_book_ticker_frame_parses() -> None:
    rows = lines("binance_bookTicker.jsonl")
    tickers = [parse_frame(raw, BY_NATIVE, RECV) for raw in rows]
    assert all(isinstance(t, Ticker) for t in tickers) and len(tickers) == 40
    first = tickers[0]
    assert isinstance(first, Ticker)
    assert (first.bid, first.bid_size, first.ask, first.ask_size) == (
        35210000,
        67200000000,
        35260000,
        319900000000,
    )


def test_kline_frames_are_ignored_not_errors() -> None:
    assert [parse_frame(raw, BY_NATIVE, RECV) for raw in lines("binance_kline.jsonl")] == [
        None,
        None,
    ]


def test_control_and_shutdown_frames() -> None:
    assert parse_frame(b'{"result":null,"id":1}', BY_NATIVE, RECV) == Control(
        {"result": None, "id": 1}
    )
    shutdown = parse_frame(
        b'{"stream":"!serverShutdown","data":{"e":"serverShutdown","E":1770123456789}}',
        BY_NATIVE,
        RECV,
    )
    assert shutdown == ServerShutdown(1770123456789 * 1_000_000)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"stream":"x","data":{"e":',
        b"[1,2]",
        b'{"stream":"nknusdt@depth","data":{"e":"depthUpdate","s":"NKNUSDT","U":1}}',
        b'{"e":"trade","s":"NKNUSDT","t":1,"p":"0.1x","q":"1","T":1,"m":true}',
        b'{"e":"trade","s":"NOPE","t":1,"p":"0.1","q":"1","T":1,"m":true}',
        b'{"e":"trade","s":"NKNUSDT","t":1,"p":"0.000000001","q":"1","T":1,"m":true}',
        b'{"weird":1}',
    ],
)
def test_malformed_frames_raise_protocol_error(raw: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_frame(raw, BY_NATIVE, RECV)


def _independent_book() -> tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]]:
    """The official algorithm written directly on Decimals, without our parser or book."""
    snap = json.loads((SAMPLES / "binance_depth_snapshot.jsonl").read_text())
    bids = {Decimal(p): Decimal(q) for p, q in snap["bids"]}
    asks = {Decimal(p): Decimal(q) for p, q in snap["asks"]}
    last = snap["lastUpdateId"]
    for raw in lines("binance_depth.jsonl"):
        data = json.loads(raw)["data"]
        if data["u"] <= last:
            continue
        assert data["U"] <= last + 1
        for side, rows in ((bids, data["b"]), (asks, data["a"])):
            for p, q in rows:
                if Decimal(q) == 0:
                    side.pop(Decimal(p), None)
                else:
                    side[Decimal(p)] = Decimal(q)
        last = data["u"]
    return bids, asks


def test_snapshot_plus_150_diffs_equal_an_independent_book() -> None:
    from quantsaas.book import L2Book

    sync = DepthSync(NKN)
    book = L2Book(NKN)
    diffs = [parse_frame(raw, BY_NATIVE, RECV) for raw in lines("binance_depth.jsonl")]
    assert all(isinstance(d, DepthDiff) for d in diffs)
    assert sync.on_diff(diffs[0]) is None  # type: ignore[arg-type]
    depth = parse_depth_snapshot((SAMPLES / "binance_depth_snapshot.jsonl").read_bytes(), NKN, RECV)
    events = sync.on_snapshot(depth)
    assert isinstance(events[0], BookSnapshot) and events[0].sequence == 499869752
    for event in events:
        if isinstance(event, BookSnapshot):
            book.apply_snapshot(event)
        else:
            book.apply_delta(event)
    for diff in diffs[1:]:
        delta = sync.on_diff(diff)  # type: ignore[arg-type]
        assert isinstance(delta, BookDelta)
        book.apply_delta(delta)
    assert sync.last_id == 499870179 and sync.gaps == 0
    bids, asks = _independent_book()
    ours_bids = {NKN.price_decimal(p): NKN.size_decimal(s) for p, s in book.bids()}
    ours_asks = {NKN.price_decimal(p): NKN.size_decimal(s) for p, s in book.asks()}
    assert ours_bids == bids and ours_asks == asks
    assert book.valid and book.best_bid()[0] < book.best_ask()[0]  # type: ignore[index]


POISON_FRAMES = [
    lines("binance_depth.jsonl")[5],
    lines("binance_trade.jsonl")[0],
    lines("binance_aggTrade.jsonl")[0],
    lines("binance_bookTicker.jsonl")[0],
]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), token=poison.tokens)
def test_any_text_for_any_number_gives_a_value_or_a_protocol_error(
    data: st.DataObject, token: str
) -> None:
    frame = data.draw(st.sampled_from(POISON_FRAMES))
    path = data.draw(st.sampled_from(poison.slots(json.loads(frame))))
    raw = poison.inject(frame, path, token)
    try:
        item = parse_frame(raw, BY_NATIVE, RECV)
    except ProtocolError as exc:
        assert len(str(exc)) < 700
        return
    if isinstance(item, DepthDiff):
        assert 0 <= item.first_id <= MAX_RAW and 0 <= item.last_id <= MAX_RAW
        poison.check_value(item.delta)
    poison.check_value(item)


@pytest.mark.parametrize("token", poison.TOKENS)
def test_every_poisoned_price_of_a_depth_diff_is_a_malformed_book(token: str) -> None:
    frame = lines("binance_depth.jsonl")[5]
    raw = poison.inject(frame, ("data", "b", 0, 0), token)
    with pytest.raises(ProtocolError) as caught:
        parse_frame(raw, BY_NATIVE, RECV)
    assert len(str(caught.value)) < 400
    if poison.decodes(raw):  # valid JSON: the book of that symbol is known to be hit
        assert isinstance(caught.value, MalformedBook) and caught.value.symbol == "NKNUSDT"


@settings(max_examples=100, deadline=None)
@given(data=st.data(), token=poison.tokens)
def test_any_text_in_a_rest_snapshot_gives_a_snapshot_or_a_protocol_error(
    data: st.DataObject, token: str
) -> None:
    body = (SAMPLES / "binance_depth_snapshot.jsonl").read_bytes()
    path = data.draw(st.sampled_from(poison.slots(json.loads(body))[:40]))
    try:
        depth = parse_depth_snapshot(poison.inject(body, path, token), NKN, RECV)
    except ProtocolError:
        return
    poison.check_value(depth.snapshot)


def test_the_typed_depth_path_equals_the_general_path_on_every_frame() -> None:
    for raw in lines("binance_depth.jsonl"):
        typed = parse_frame(raw, BY_NATIVE, RECV)
        general = parse_message(json.loads(raw), BY_NATIVE, RECV)
        assert typed == general and isinstance(typed, DepthDiff)
        assert parse_frame(raw.decode(), BY_NATIVE, RECV) == general  # text frames too
    raw_payload = json.dumps(json.loads(lines("binance_depth.jsonl")[3])["data"]).encode()
    assert parse_frame(raw_payload, BY_NATIVE, RECV) == parse_message(
        json.loads(raw_payload), BY_NATIVE, RECV
    )
