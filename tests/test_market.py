from helpers import make_instrument, trade
from quantsaas.market import BUCKET_NS, DAY_NS, InstrumentState

INSTRUMENT = make_instrument()


def test_volume_and_open_roll_off_after_24_hours() -> None:
    state = InstrumentState(INSTRUMENT)
    state.on_trade(trade(INSTRUMENT, 100, 5, "a", 0))
    state.on_trade(trade(INSTRUMENT, 120, 7, "b", 2 * BUCKET_NS))
    assert state.volume_24h() == 12 and state.open_24h() == 100
    state.on_trade(trade(INSTRUMENT, 130, 1, "c", DAY_NS + BUCKET_NS))
    assert state.volume_24h() == 8 and state.open_24h() == 120
    state.on_trade(trade(INSTRUMENT, 140, 2, "d", 3 * DAY_NS))
    assert state.volume_24h() == 2 and state.open_24h() == 140


def test_recent_trades_are_bounded() -> None:
    state = InstrumentState(INSTRUMENT, recent_trades=3)
    for n in range(5):
        state.on_trade(trade(INSTRUMENT, 100 + n, 1, str(n), n))
    assert [t.trade_id for t in state.trades] == ["2", "3", "4"]
    assert state.trade_count == 5
    last = state.last_trade
    assert last is not None and last.price == 104
