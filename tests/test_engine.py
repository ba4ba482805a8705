import pytest

from helpers import ScriptedFeed, delta, make_instrument, snapshot, trade
from quantsaas.bus import Envelope
from quantsaas.engine import BOOK, TRADES, Engine
from quantsaas.errors import UnknownInstrument
from quantsaas.model import BookDelta, BookSnapshot

BTC = make_instrument()
ETH = make_instrument("ETH")


def engine_with_feed() -> tuple[Engine, ScriptedFeed]:
    feed = ScriptedFeed([BTC, ETH])
    return Engine([feed]), feed


@pytest.mark.asyncio
async def test_book_events_update_the_book_and_are_published_in_order() -> None:
    engine, _ = engine_with_feed()
    sub = engine.bus.subscribe([(BOOK, *BTC.key)])
    engine.on_event(snapshot(BTC, [(100, 1)], [(102, 1)]))
    engine.on_event(delta(BTC, [(101, 2)], [], 2))
    first, second = await sub.get(), await sub.get()
    assert isinstance(first, Envelope) and isinstance(first.event, BookSnapshot)
    assert isinstance(second, Envelope) and isinstance(second.event, BookDelta)
    assert (first.seq, second.seq) == (1, 2)
    assert engine.books[BTC.key].best_bid() == (101, 2)


@pytest.mark.asyncio
async def test_a_crossing_delta_is_not_published_and_a_resync_is_requested() -> None:
    engine, feed = engine_with_feed()
    sub = engine.bus.subscribe([(BOOK, *BTC.key)])
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
    engine, _ = engine_with_feed()
    sub = engine.bus.subscribe([(TRADES, *ETH.key)])
    for n, price in enumerate((100, 110, 105)):
        engine.on_event(trade(ETH, price, 2, str(n), 10**9 * n))
    state = engine.state(ETH)
    assert state.trade_count == 3 and state.volume_24h() == 6
    assert state.open_24h() == 100 and state.last_trade is not None
    assert state.last_trade.price == 105
    assert sub.pending == 3


def test_symbols_resolve_in_any_spelling_and_unknown_ones_raise() -> None:
    engine, _ = engine_with_feed()
    assert engine.resolve("btc-usd") == [BTC]
    assert engine.instrument("test", "ETH/USD") == ETH
    with pytest.raises(UnknownInstrument, match="DOGE/USD"):
        engine.resolve("DOGE/USD")
    with pytest.raises(UnknownInstrument, match="on venue 'binance'"):
        engine.resolve("BTC/USD", "binance")


def test_listeners_see_only_accepted_events() -> None:
    engine, _ = engine_with_feed()
    seen: list[object] = []
    engine.listeners.append(seen.append)
    accepted = snapshot(BTC, [(100, 1)], [(102, 1)])
    engine.on_event(accepted)
    engine.on_event(delta(BTC, [(105, 1)], [], 2))  # crossed: rejected
    engine.on_event(delta(BTC, [(99, 1)], [], 3))  # awaiting resync: dropped
    assert seen == [accepted]


def test_registered_channels_provide_their_initial_state() -> None:
    engine, _ = engine_with_feed()
    assert set(engine.channels) == {"trades", "book", "ticker"}
    assert engine.channels["book"] is not None and engine.channels["book"](BTC) is None
    engine.on_event(snapshot(BTC, [(100, 1)], [(102, 1)]))
    initial = engine.channels["book"](BTC)
    assert isinstance(initial, BookSnapshot) and initial.bids == ((100, 1),)
    engine.register_channel("candles", lambda instrument: None)
    assert "candles" in engine.channels


def test_a_feed_reporting_stale_books_gets_them_invalidated() -> None:
    engine, feed = engine_with_feed()
    engine.on_event(snapshot(BTC, [(100, 1)], [(102, 1)]))
    engine.on_event(snapshot(ETH, [(100, 1)], [(102, 1)]))
    feed.books_stale([BTC], "connection dropped")
    assert not engine.books[BTC.key].valid
    assert engine.books[ETH.key].valid
    engine.on_event(delta(BTC, [(99, 1)], [], 2))
    assert engine.rejected_deltas == 1
