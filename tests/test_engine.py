import pytest

from helpers import (
    ScriptedFeed,
    delta,
    engine_of,
    make_instrument,
    make_runtime,
    on_events,
    snapshot,
    trade,
)
from quantsaas.bus import Envelope
from quantsaas.channels import BOOK, TRADES
from quantsaas.engine import Engine
from quantsaas.errors import UnknownInstrument
from quantsaas.model import BookDelta, BookSnapshot
from quantsaas.readmodel import LocalReadModel, resolve
from quantsaas.runtime import Runtime

BTC = make_instrument()
ETH = make_instrument("ETH")


def engine_with_feed() -> tuple[Engine, ScriptedFeed]:
    engine, feed, _ = built_with_feed()
    return engine, feed


def built_with_feed() -> tuple[Engine, ScriptedFeed, Runtime]:
    """The engine as the composition root wires it: publishing on the bus, stale reports from
    its feed going to it (as `Feed.run` would)."""
    feed = ScriptedFeed([BTC, ETH])
    built = make_runtime([feed])
    engine = engine_of(built)
    feed.sink = engine.on_event
    return engine, feed, built


@pytest.mark.asyncio
async def test_book_events_update_the_book_and_are_published_in_order() -> None:
    engine, _, built = built_with_feed()
    sub = built.bus.subscribe([(BOOK, *BTC.key)])
    engine.on_event(snapshot(BTC, [(100, 1)], [(102, 1)]))
    engine.on_event(delta(BTC, [(101, 2)], [], 2))
    first, second = await sub.get(), await sub.get()
    assert isinstance(first, Envelope) and isinstance(first.event, BookSnapshot)
    assert isinstance(second, Envelope) and isinstance(second.event, BookDelta)
    assert (first.seq, second.seq) == (1, 2)
    assert engine.books[BTC.key].best_bid() == (101, 2)


@pytest.mark.asyncio
async def test_a_crossing_delta_is_not_published_and_a_resync_is_requested() -> None:
    engine, feed, built = built_with_feed()
    sub = built.bus.subscribe([(BOOK, *BTC.key)])
    engine.on_event(snapshot(BTC, [(100, 1)], [(102, 1)]))
    engine.on_event(delta(BTC, [(103, 1)], [], 2))
    engine.on_event(delta(BTC, [(99, 1)], [], 3))  # ignored: the book awaits its snapshot
    assert [reason for _, reason in feed.resyncs] == [
        "test BTC/USD: best bid 1.03 >= best ask 1.02"
    ]
    assert engine.rejected_deltas == 1
    assert sub.pending == 1  # only the first snapshot
    engine.on_event(snapshot(BTC, [(100, 1)], [(102, 1)], sequence=9))
    engine.on_event(delta(BTC, [(99, 1)], [], 10))
    assert sub.pending == 3
    assert engine.books[BTC.key].bids() == [(100, 1), (99, 1)]


@pytest.mark.asyncio
async def test_trades_feed_market_state() -> None:
    engine, _, built = built_with_feed()
    sub = built.bus.subscribe([(TRADES, *ETH.key)])
    for n, price in enumerate((100, 110, 105)):
        engine.on_event(trade(ETH, price, 2, str(n), 10**9 * n))
    state = engine.market.register(ETH)
    assert state.trade_count == 3 and state.volume_24h() == 6
    assert state.open_24h() == 100 and state.last_trade is not None
    assert state.last_trade.price == 105
    assert sub.pending == 3


def test_symbols_resolve_in_any_spelling_and_unknown_ones_raise() -> None:
    engine, _ = engine_with_feed()
    known = engine.instruments
    assert resolve(known, "btc-usd", None) == [BTC]
    assert resolve(known, "ETH/USD", "test") == [ETH]
    with pytest.raises(UnknownInstrument, match="DOGE/USD"):
        resolve(known, "DOGE/USD", None)
    with pytest.raises(UnknownInstrument, match="on venue 'binance'"):
        resolve(known, "BTC/USD", "binance")


def test_bus_consumers_see_only_accepted_events() -> None:
    engine, _, built = built_with_feed()
    seen: list[object] = []
    on_events(built, seen.append)
    accepted = snapshot(BTC, [(100, 1)], [(102, 1)])
    engine.on_event(accepted)
    engine.on_event(delta(BTC, [(105, 1)], [], 2))  # crossed: rejected
    engine.on_event(delta(BTC, [(99, 1)], [], 3))  # awaiting resync: dropped
    assert seen == [accepted]


def test_registered_channels_provide_their_initial_state() -> None:
    engine, _, built = built_with_feed()
    read_model = built.read_model
    assert isinstance(read_model, LocalReadModel)
    assert {"trades", "book", "ticker"} <= set(read_model.channels())
    assert read_model.initial((BOOK, *BTC.key)) is None
    engine.on_event(snapshot(BTC, [(100, 1)], [(102, 1)]))
    initial = read_model.initial((BOOK, *BTC.key))
    assert (
        initial is not None
        and initial.seq == 1
        and '"bids":[["1.00","0.00000001"]]' in initial.messages[0]
    )
    read_model.register_channel("custom", lambda instrument: None)
    assert "custom" in read_model.channels()


def test_a_feed_reporting_stale_books_gets_them_invalidated() -> None:
    engine, feed = engine_with_feed()
    engine.on_event(snapshot(BTC, [(100, 1)], [(102, 1)]))
    engine.on_event(snapshot(ETH, [(100, 1)], [(102, 1)]))
    feed.books_stale([BTC], "connection dropped")
    assert not engine.books[BTC.key].valid
    assert engine.books[ETH.key].valid
    engine.on_event(delta(BTC, [(99, 1)], [], 2))
    assert engine.rejected_deltas == 1
