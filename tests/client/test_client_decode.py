"""The client decodes exactly what the server encodes: every event type round-trips through the
server's own wire encoders (api/wire.py, api/analytics_wire.py) back to equal values, prices and
sizes as exact integers; hostile messages raise one of MALFORMED and nothing else."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import make_instrument
from quantsaas.analytics.candles import Candle as ServerCandle
from quantsaas.analytics.events import OfiUpdate, OptionGreeks, VpinUpdate
from quantsaas.analytics.greeks import option_greeks
from quantsaas.analytics.ofi import OfiBucket
from quantsaas.analytics.vpin import VpinBucket
from quantsaas.client.decode import (
    MALFORMED,
    Decoder,
    instrument_from_json,
    listed_instruments,
    option_instrument,
    stream_key,
)
from quantsaas.client.errors import UnknownSymbol
from quantsaas.client.events import Candle, Greeks, Ofi, Vpin
from quantsaas.feeds.sim_instruments import sim_instrument
from quantsaas.feeds.sim_options import option_chains
from quantsaas.model import BookDelta, BookSnapshot, Side, Ticker, Trade
from quantsaas.wire import event_message, instrument_json

BTC = make_instrument(venue="sim")
ADA = make_instrument("ADA", venue="sim", price_scale=6, size_scale=1)
DECODER = Decoder([BTC, ADA])


def wire(channel: str, seq: int, event: Any) -> dict[str, Any]:
    """What the client receives: the server's message, through real JSON text."""
    loaded: dict[str, Any] = orjson.loads(orjson.dumps(event_message(channel, seq, event)))
    return loaded


raws = st.integers(min_value=0, max_value=10**15)
prices = st.integers(min_value=1, max_value=10**15)
levels = st.lists(st.tuples(st.integers(1, 10**12), raws), max_size=30)
stamps = st.integers(min_value=0, max_value=2**62)


@settings(max_examples=200)
@given(prices, raws, st.sampled_from(list(Side)), st.text(min_size=1, max_size=20), stamps, stamps)
def test_trades_round_trip_exactly(
    price: int, size: int, side: Side, trade_id: str, ts_event: int, ts_recv: int
) -> None:
    for instrument in (BTC, ADA):
        trade = Trade(instrument, price, size, side, trade_id, ts_event, ts_recv)
        assert DECODER.decode(wire("trades", 7, trade)) == trade


@settings(max_examples=200)
@given(levels, levels, st.integers(0, 2**62), stamps, stamps)
def test_books_round_trip_exactly(
    bids: list[tuple[int, int]], asks: list[tuple[int, int]], nonce: int, ts: int, recv: int
) -> None:
    for kind in (BookSnapshot, BookDelta):
        book = kind(BTC, tuple(bids), tuple(asks), nonce, ts, recv)
        assert DECODER.decode(wire("book", 3, book)) == book


@given(prices, raws, prices, raws, st.none() | prices, st.none() | raws, stamps)
def test_tickers_round_trip_exactly(
    bid: int, bid_size: int, ask: int, ask_size: int, last: int | None, vol: int | None, ts: int
) -> None:
    ticker = Ticker(ADA, bid, bid_size, ask, ask_size, last, vol, ts, ts + 1)
    assert DECODER.decode(wire("ticker", 1, ticker)) == ticker


def test_analytics_decode_to_the_clients_typed_values() -> None:
    candle = ServerCandle(
        BTC,
        "1m",
        60 * 10**9,
        100,
        150,
        90,
        120,
        7,
        3,
        700 + 3 * 150,
        2,
        True,
        61 * 10**9,
        62 * 10**9,
    )
    got = DECODER.decode(wire("candles", 5, candle))
    assert got == Candle(
        BTC, "1m", 60 * 10**9, 100, 150, 90, 120, 7, 3, candle.vwap, 2, True, 61 * 10**9, 62 * 10**9
    )
    assert isinstance(got.vwap, Decimal)

    bucket = OfiBucket(10**9, 10**9, (5, -12, 0), 4, 8.0)
    ofi = DECODER.decode(wire("ofi", 6, OfiUpdate(BTC, bucket, 2 * 10**9, 2 * 10**9 + 5)))
    assert ofi == Ofi(
        BTC, 10**9, 10**9, (5, -12, 0), (0.625, -1.5, 0.0), 8, 4, 2 * 10**9, 2 * 10**9 + 5
    )

    vpin_bucket = VpinBucket(3, 2.5, 1.5, None, 10**9)
    vpin = DECODER.decode(wire("vpin", 9, VpinUpdate(BTC, vpin_bucket, 400, 50, 10**9, 10**9)))
    assert vpin == Vpin(BTC, 3, 400, 50, 2.5e-8, 1.5e-8, None, 10**9, 10**9)


def test_greeks_come_with_the_options_own_instrument() -> None:
    spot = sim_instrument("BTC/USD")
    chain = option_chains((spot,), {spot.symbol: 0.6}, 1_800_000_000 * 10**9)[0]
    ticker = chain.tickers(60_000.0 * 10**spot.price_scale, 1_800_000_000 * 10**9 + 5)[0]
    option = ticker.instrument
    assert option.option is not None
    ours = option_greeks(
        option.option.kind,
        60_000.0,
        float(option.option.strike_decimal),
        option.option.expiry_ns,
        ticker.ts_event,
        0.6,
        0.0,
    )
    message = wire(
        "greeks", 11, OptionGreeks(option, ticker, ours, ticker.ts_event, ticker.ts_recv)
    )
    assert stream_key(message) == ("greeks", "sim", "BTC/USD")  # named by the underlying
    greeks = Decoder().decode(message)
    assert isinstance(greeks, Greeks)
    assert greeks.instrument == option  # venue, names, scales and OptionSpec rebuilt exactly
    assert greeks.ticker == ticker
    assert greeks.ours is not None and greeks.ours.delta == pytest.approx(float(ours.delta))
    assert option_instrument("sim", message["data"]) == option


def test_the_listing_gives_pairs_and_options_exactly() -> None:
    spot = sim_instrument("BTC/USD")
    chain = option_chains((spot,), {spot.symbol: 0.6}, 1_800_000_000 * 10**9)[0]
    call, put = chain.instruments[0], chain.instruments[-1]
    assert call.option is not None and put.option is not None
    assert call.option.kind != put.option.kind
    body = orjson.loads(orjson.dumps({"data": [instrument_json(i) for i in (spot, call, put)]}))
    assert listed_instruments(body) == [spot, call, put]  # OptionSpec, grids and scales exact
    assert body["data"][0]["option"] is None
    described = body["data"][1]["option"]
    assert described["underlying"] == "BTC/USD" and described["kind"] == call.option.kind
    assert described["expiry_ns"] == call.option.expiry_ns
    # a server older than the `option` field: its options are left to their tickers
    for item in body["data"]:
        del item["option"]
    assert listed_instruments(body) == [spot]
    body["data"][1]["option"] = ["not", "an", "object"]
    with pytest.raises(TypeError):
        listed_instruments(body)


def test_instruments_are_read_from_the_listing() -> None:
    for symbol in ("BTC/USD", "ETH/USD", "SOL/USD", "ADA/USD"):
        instrument = sim_instrument(symbol)
        assert instrument_from_json(orjson.loads(orjson.dumps(instrument_json(instrument)))) == (
            instrument
        )


def _mutations(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The message with each field (top-level and in data) removed or replaced by junk."""
    out = []
    junks: tuple[Any, ...] = (None, "x", 1.5, [], {}, -1, "1e999", ["1", "2", "3"], True)
    for path in [*((k,) for k in message), *(("data", k) for k in message["data"])]:
        for junk in junks:
            broken = copy.deepcopy(message)
            target = broken if len(path) == 1 else broken["data"]
            target[path[-1]] = junk
            out.append(broken)
        broken = copy.deepcopy(message)
        target = broken if len(path) == 1 else broken["data"]
        del target[path[-1]]
        out.append(broken)
    return out


def test_hostile_messages_raise_only_malformed() -> None:
    samples = [
        wire("trades", 1, Trade(BTC, 100, 2, Side.BUY, "9", 5, 6)),
        wire("book", 2, BookDelta(BTC, ((100, 1),), ((101, 0),), 3, 5, 6)),
        wire("ticker", 3, Ticker(BTC, 1, 2, 3, 4, 5, 6, 7, 8)),
    ]
    decoded = 0
    for sample in samples:
        for broken in _mutations(sample):
            try:
                DECODER.decode(broken)
                decoded += 1
            except MALFORMED:
                pass
    assert decoded > 0  # junk in fields the client does not read is ignored


def test_unknown_instruments_are_refused() -> None:
    message = wire(
        "trades", 1, Trade(make_instrument("DOGE", venue="sim"), 1, 1, Side.BUY, "1", 1, 1)
    )
    with pytest.raises(UnknownSymbol):
        DECODER.decode(message)
    assert DECODER.decode({**message, "type": "bbo"}) is None  # types it does not decode
