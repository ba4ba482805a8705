from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import make_instrument
from quantsaas.analytics.candles import (
    CandleBuilder,
    RollingVwap,
    SessionVwap,
    candles_from_trades,
    interval_ns,
)
from quantsaas.model import Side, Trade

BTC = make_instrument()
S = 1_000_000_000


def tr(price: int, size: int, ts: int, side: Side = Side.BUY) -> Trade:
    return Trade(BTC, price, size, side, str(ts), ts, ts + 1)


TRADES = [
    tr(6_000_000, 10, 1 * S),
    tr(6_000_100, 30, 20 * S, Side.SELL),
    tr(5_999_900, 20, 59 * S),
    tr(6_000_200, 5, 61 * S),
    tr(6_000_000, 5, 190 * S, Side.SELL),
]


def test_one_minute_candles_exact() -> None:
    first, second, third = candles_from_trades(TRADES, "1m")
    assert (first.open, first.high, first.low, first.close) == (
        6_000_000,
        6_000_100,
        5_999_900,
        5_999_900,
    )
    assert (first.volume, first.buy_volume, first.trades, first.closed) == (60, 30, 3, True)
    assert first.notional == 6_000_000 * 10 + 6_000_100 * 30 + 5_999_900 * 20
    assert first.vwap == Decimal(first.notional) / 60 / 100
    assert str(first.vwap) == "60000.16666666666666666666667"  # Decimal, 28 digits
    assert (second.start_ns, second.volume, second.closed) == (60 * S, 5, True)
    assert (third.start_ns, third.closed) == (180 * S, False)  # no candle for the empty minute
    assert candles_from_trades(TRADES, "1m", until_ns=240 * S)[-1].closed


def test_live_equals_history_for_every_interval() -> None:
    for name in ("1s", "1m", "5m", "1h", "1d"):
        builder = CandleBuilder(BTC, name)
        closed = [c for t in TRADES if (c := builder.on_trade(t))]
        assert builder.current is not None
        assert [*closed, builder.current] == candles_from_trades(TRADES, name)


def is_open(builder: CandleBuilder) -> bool:
    return builder.current is not None


def test_close_on_time_and_late_trades() -> None:
    builder = CandleBuilder(BTC, "1m")
    builder.on_trade(TRADES[0])
    assert builder.close_due(59 * S) is None
    closed = builder.close_due(60 * S)
    assert closed is not None and closed.closed
    assert not is_open(builder)
    builder.on_trade(TRADES[3])
    builder.on_trade(TRADES[1])  # belongs to the published minute: dropped
    assert builder.late_trades == 1
    assert builder.current is not None and builder.current.volume == 5


def test_daily_candles_start_at_midnight_utc() -> None:
    ts = 1_700_000_000 * S  # 2023-11-14T22:13:20Z
    (candle,) = candles_from_trades([tr(1, 1, ts)], "1d")
    assert candle.start_ns == 1_699_920_000 * S
    (four,) = candles_from_trades([tr(1, 1, ts)], "4h")
    assert four.start_ns == 1_699_992_000 * S  # 20:00Z


def test_rolling_vwap_in_one_second_slots() -> None:
    rolling = RollingVwap(BTC, 10 * S, S)
    rolling.on_trade(tr(100, 1, 0))
    rolling.on_trade(tr(200, 1, S // 2))  # same slot as the first
    rolling.on_trade(tr(400, 2, 5 * S))
    assert len(rolling._slots) == 2
    assert rolling.value == Decimal(100 + 200 + 800) / 4 / 100
    rolling.expire(10 * S)  # the first slot (both trades) leaves together
    assert rolling.volume == 2 and rolling.value == Decimal("4")


def test_vwaps() -> None:
    session, rolling = SessionVwap(BTC), RollingVwap(BTC, 60 * S)
    assert session.value is None and rolling.value is None
    for trade in TRADES:
        session.on_trade(trade)
        rolling.on_trade(trade)
    assert session.volume == 70
    assert session.value == Decimal(sum(t.price * t.size for t in TRADES)) / 70 / 100
    assert rolling.value == Decimal("60000.00")  # only the trade at 190 s is within 60 s
    nextday = tr(7_000_000, 1, 86_400 * S + 5)
    session.on_trade(nextday)
    assert session.value == Decimal("70000")


def test_bad_input_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown interval '2m'"):
        interval_ns("2m")
    with pytest.raises(ValueError, match="unknown interval"):
        CandleBuilder(BTC, "")
    with pytest.raises(ValueError, match="window must be positive"):
        RollingVwap(BTC, 0)
    with pytest.raises(ValueError, match="resolution not negative"):
        RollingVwap(BTC, S, -1)
    with pytest.raises(ValueError, match="time order"):
        candles_from_trades([TRADES[3], TRADES[0]], "1m")


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(1, 10**7), st.integers(1, 10**9), st.integers(0, 10 * S), st.booleans()
        ),
        min_size=1,
        max_size=60,
    ),
    st.sampled_from(["1s", "1m", "5m"]),
)
def test_live_equals_history_on_random_trades(
    raw: list[tuple[int, int, int, bool]], name: str
) -> None:
    trades = sorted(
        (tr(p, s, ts, Side.BUY if b else Side.SELL) for p, s, ts, b in raw),
        key=lambda t: t.ts_event,
    )
    builder = CandleBuilder(BTC, name)
    closed = [c for t in trades if (c := builder.on_trade(t))]
    assert builder.current is not None
    assert [*closed, builder.current] == candles_from_trades(trades, name)
    assert sum(c.volume for c in [*closed, builder.current]) == sum(t.size for t in trades)
