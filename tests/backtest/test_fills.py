"""The fill model on a scripted L2 market: a 200-event golden script with known fills
(zero latency, fill-on-touch), the queue models, latency, and the model's invariants.

The golden script is written by hand: each segment sets up one rule of fills.py and the
expected fills below were worked out on paper from the rules in its docstring.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from backtest.examples_path import market_maker_class
from quantsaas.backtest import Backtest, BacktestConfig, BookView, Fees, Order, OrderStatus
from quantsaas.backtest.sources import sim_events, sim_instruments
from quantsaas.backtest.strategy import Strategy
from quantsaas.model import BookDelta, BookSnapshot, Instrument, Side, Trade

MS = 1_000_000
T0 = 1_704_067_200 * 1_000_000_000
X = Instrument("test", "X", "USD", "XUSD", 2, 0, 1, 1)
BUY, SELL = Side.BUY, Side.SELL
Action = Callable[["Scripted"], None]


def snap(bids: list[tuple[int, int]], asks: list[tuple[int, int]]) -> Any:
    return ("snap", tuple(bids), tuple(asks))


def delta(bids: list[tuple[int, int]] = (), asks: list[tuple[int, int]] = ()) -> Any:  # type: ignore[assignment]
    return ("delta", tuple(bids), tuple(asks))


def trade(side: Side, price: int, size: int) -> Any:
    return ("trade", side, price, size)


@dataclass
class Script:
    steps: list[Any] = field(default_factory=list)
    actions: dict[int, list[Action]] = field(default_factory=dict)

    def event(self, *items: Any) -> None:
        self.steps.extend(items)

    def then(self, action: Action) -> None:
        """Run `action` right after the last event so far is delivered."""
        self.actions.setdefault(len(self.steps) - 1, []).append(action)

    def filler(self, count: int) -> None:
        """Book changes far from every order: they must change nothing."""
        for index in range(count):
            self.steps.append(delta(bids=[(9000, 1 + index % 3)]))

    def events(self) -> list[Any]:
        out: list[Any] = []
        for index, step in enumerate(self.steps):
            ts = T0 + index * MS
            if step[0] == "snap":
                out.append(BookSnapshot(X, step[1], step[2], index, ts, ts))
            elif step[0] == "delta":
                out.append(BookDelta(X, step[1], step[2], index, ts, ts))
            else:
                out.append(Trade(X, step[2], step[3], step[1], str(index), ts, ts))
        return out


class Scripted(Strategy):
    def __init__(self, script: Script) -> None:
        super().__init__()
        self.script = script
        self.seen = -1
        self.tags: dict[str, Order] = {}

    def _next(self) -> None:
        self.seen += 1
        for action in self.script.actions.get(self.seen, ()):
            action(self)

    def on_book(self, book: BookView, event: BookDelta | BookSnapshot) -> None:
        self._next()

    def on_trade(self, trade: Trade) -> None:
        self._next()

    def order(self, tag: str, side: Side, size: int, price: int | None = None, post: bool = False):  # type: ignore[no-untyped-def]
        self.tags[tag] = self.submit(X, side, size, price, post)


def golden_script() -> tuple[Script, list[tuple[str, int, int, str, int]]]:
    """The script and its fills: (tag, price, size, liquidity, index of the event)."""
    s = Script()
    expected: list[tuple[str, int, int, str, int]] = []
    s.event(
        snap(
            [(9900, 5), (9800, 5), (9700, 5), (9000, 1)],
            [(10100, 2), (10200, 3), (10300, 5), (10400, 10)],
        )
    )
    # 1. market orders walk the book; liquidity taken stays taken until the level updates
    s.then(lambda b: b.order("M1", BUY, 4))
    s.then(lambda b: b.order("M2", BUY, 2))
    expected += [("M1", 10100, 2, "taker", 0), ("M1", 10200, 2, "taker", 0)]
    expected += [("M2", 10200, 1, "taker", 0), ("M2", 10300, 1, "taker", 0)]
    s.filler(20)
    s.event(delta(asks=[(10200, 3)]))  # the venue refreshes 10200: taken forgotten there
    s.then(lambda b: b.order("M3", BUY, 2))
    expected += [("M3", 10200, 2, "taker", len(s.steps) - 1)]
    s.filler(20)
    # 2. on touch, trades at our price fill a resting bid, partially then fully
    s.then(lambda b: b.order("L1", BUY, 3, 9900))
    s.event(trade(SELL, 9900, 1))
    expected += [("L1", 9900, 1, "maker", len(s.steps) - 1)]
    s.event(delta(bids=[(9900, 4)]))
    s.event(trade(SELL, 9900, 5))
    expected += [("L1", 9900, 2, "maker", len(s.steps) - 1)]
    s.filler(20)
    # 3. the opposite side reaches a resting ask: filled up to what the bid level holds
    s.then(lambda b: b.order("L2", SELL, 2, 10500))
    s.event(
        delta(bids=[(10500, 1)], asks=[(10100, 0), (10200, 0), (10300, 0), (10400, 0), (10600, 5)])
    )
    expected += [("L2", 10500, 1, "maker", len(s.steps) - 1)]
    s.event(delta(bids=[(10500, 3)]))
    expected += [("L2", 10500, 1, "maker", len(s.steps) - 1)]
    s.filler(20)
    # 4. trades through our price fill up to the trade's size
    s.then(lambda b: b.order("L3", BUY, 2, 10400))
    s.event(trade(SELL, 10300, 1))
    expected += [("L3", 10400, 1, "maker", len(s.steps) - 1)]
    s.event(trade(SELL, 10300, 5))
    expected += [("L3", 10400, 1, "maker", len(s.steps) - 1)]
    s.filler(20)
    # 5. a post-only order that would take is rejected; a cancelled order never fills
    s.then(lambda b: b.order("P1", BUY, 1, 10600, post=True))
    s.then(lambda b: b.order("C1", SELL, 1, 11000))
    s.filler(5)
    s.then(lambda b: b.cancel(b.tags["C1"]))
    s.event(trade(BUY, 11000, 5))
    s.filler(20)
    # 6. a marketable limit takes up to its price, rests the rest, which a trade then fills
    s.event(delta(asks=[(10700, 1)]))
    s.then(lambda b: b.order("L4", BUY, 7, 10700))
    expected += [
        ("L4", 10600, 5, "taker", len(s.steps) - 1),
        ("L4", 10700, 1, "taker", len(s.steps) - 1),
    ]
    s.filler(10)  # our bid 10700 >= best ask 10600, but we took that liquidity already
    s.event(trade(SELL, 10700, 1))
    expected += [("L4", 10700, 1, "maker", len(s.steps) - 1)]
    # 7. a market sell walks the bids; L2 took 1 of the 3 at 10500 since its last update
    s.then(lambda b: b.order("M4", SELL, 4))
    expected += [
        ("M4", 10500, 2, "taker", len(s.steps) - 1),
        ("M4", 9900, 2, "taker", len(s.steps) - 1),
    ]
    s.filler(200 - len(s.steps))
    return s, expected


def run_script(script: Script, **config: Any) -> tuple[Backtest, Scripted]:
    strategy = Scripted(script)
    settings = {"queue": "touch", "fees": Fees.parse("-0.5bp,7bp"), **config}
    backtest = Backtest(strategy, [X], BacktestConfig(**settings))
    for event in script.events():
        backtest.on_event(event)
        backtest.refresh_marks()
        backtest.account.check(backtest.fills)  # the accounting identity after every event
    backtest.finish()
    return backtest, strategy


def test_golden_script_gives_exactly_the_known_fills() -> None:
    script, expected = golden_script()
    events = script.events()
    assert len(events) == 200
    backtest, strategy = run_script(script)
    tag_of = {order.id: tag for tag, order in strategy.tags.items()}
    got = [
        (tag_of[f.order_id], f.price, f.size, f.liquidity.value, (f.ts_ns - T0) // MS)
        for f in backtest.fills
    ]
    assert got == expected
    assert strategy.tags["P1"].status is OrderStatus.REJECTED
    assert strategy.tags["C1"].status is OrderStatus.CANCELED
    assert all(strategy.tags[t].status is OrderStatus.FILLED for t in ("M1", "L1", "L2", "L4"))
    # fees: 7 bp taker, -0.5 bp maker, on notional in cash units (scale 2 + 0 + 1 = 3)
    for fill in backtest.fills:
        notional = fill.price * fill.size * 10
        rate = 70_000 if fill.liquidity.value == "taker" else -5_000
        assert fill.fee == -((-notional * rate) // 100_000_000)
    assert backtest.known_position(X) == 4 + 2 + 2 + 3 - 2 + 2 + 7 - 4


def test_no_partial_fills_fill_resting_orders_whole() -> None:
    script, expected = golden_script()
    backtest, strategy = run_script(script, partial=False)
    l1 = [f for f in backtest.fills if f.order_id == strategy.tags["L1"].id]
    first_trade = next(index for tag, _, _, _, index in expected if tag == "L1")
    assert [(f.size, (f.ts_ns - T0) // MS) for f in l1] == [(3, first_trade)]


def _queue_script(level: int) -> Script:
    s = Script()
    s.event(snap([(9900, level)], [(10000, 5)]))
    s.then(lambda b: b.order("Q", BUY, 2, 9900))
    s.event(delta(bids=[(9900, level - 3)]))  # cancels: nobody knows where
    s.event(trade(SELL, 9900, 4))
    s.event(delta(bids=[(9900, level - 7)]))
    s.event(trade(SELL, 9900, 2))
    s.event(trade(SELL, 9900, 3))
    return s


def test_risk_averse_queue_moves_only_on_trades_at_our_price() -> None:
    backtest, strategy = run_script(_queue_script(10), queue="risk-averse")
    # joins behind 10; cancels leave 7 ahead; trades: 4 -> 3 ahead, 2 -> 1 ahead, 3 -> fills 2
    assert [(f.size, (f.ts_ns - T0) // MS) for f in backtest.fills] == [(2, 5)]
    assert strategy.tags["Q"].queue_ahead == 0


def _crowded_script() -> Script:
    s = Script()
    s.event(snap([(9900, 10)], [(10000, 5)]))
    s.then(lambda b: b.order("Q", BUY, 2, 9900))
    s.event(delta(bids=[(9900, 20)]))  # 10 more join behind us
    s.event(delta(bids=[(9900, 14)]))  # 6 cancelled: ahead or behind?
    s.event(trade(SELL, 9900, 8))
    s.event(delta(bids=[(9900, 6)]))  # the trade's 8 leave the level
    s.event(trade(SELL, 9900, 3))
    return s


@pytest.mark.parametrize(
    ("queue", "fills"),
    [
        # risk-averse: cancels are all behind us (10 ahead); 8 traded -> 2 ahead; 3 -> fills 1
        ("risk-averse", [(1, 5)]),
        # prob:1: of 6 cancels, 6 * 10 / (10 + 10) = 3 were ahead -> 7; 8 traded leaves 1 for
        # us; the level's drop of 8 is 7 traded ahead + 1 cancel; then 3 fill the last 1
        ("prob:1", [(1, 3), (1, 5)]),
        ("touch", [(2, 3)]),
    ],
)
def test_queue_models_on_a_crowded_level(queue: str, fills: list[tuple[int, int]]) -> None:
    backtest, _ = run_script(_crowded_script(), queue=queue)
    assert [(f.size, (f.ts_ns - T0) // MS) for f in backtest.fills] == fills


def test_latency_delays_arrival_and_what_the_strategy_sees() -> None:
    s = Script()
    s.event(snap([(9900, 5)], [(10000, 5)]))
    s.then(lambda b: b.order("M", BUY, 2))
    s.event(delta(asks=[(10000, 0), (10100, 5)]))  # at +1 ms: the ask moves away
    s.filler(20)
    backtest, strategy = run_script(s, order_latency_ns=3 * MS, md_latency_ns=2 * MS)
    (fill,) = backtest.fills
    order = strategy.tags["M"]
    # seen at +2 ms (md latency), sent then, at the venue at +5 ms: it meets the moved book
    assert order.submitted_ns == T0 + 2 * MS and order.arrives_ns == T0 + 5 * MS
    assert (fill.price, fill.ts_ns, fill.seen_ns) == (10100, T0 + 5 * MS, T0 + 7 * MS)


@pytest.mark.parametrize("queue", ["risk-averse", "prob:2", "touch"])
def test_invariants_on_the_simulator(queue: str) -> None:
    """A market maker on two simulated instruments with latency: no fill breaks the rules."""
    symbols = ["BTC/USD", "ETH/USD"]
    instruments = sim_instruments(symbols)
    config = BacktestConfig(
        order_latency_ns=7 * MS, md_latency_ns=3 * MS, fees=Fees.parse("-0.5bp,7bp"), queue=queue
    )
    strategy = market_maker_class()(every_ms=50, size="0.01", max_lots=5)
    backtest = Backtest(strategy, instruments, config)
    seen = 0
    for event in sim_events(symbols, T0, T0 + 60_000 * MS):
        before = len(backtest.fills)
        backtest.on_event(event)
        for fill in backtest.fills[before:]:
            order = backtest.orders[fill.order_id - 1]
            assert fill.ts_ns >= order.submitted_ns + config.order_latency_ns
            assert fill.seen_ns == fill.ts_ns + config.md_latency_ns
            if order.price is not None:
                assert fill.price <= order.price if order.is_buy else fill.price >= order.price
            assert order.filled <= order.size
            if type(event) is Trade and fill.liquidity.value == "maker":
                assert fill.size <= event.size
        for matcher in backtest.matchers.values():
            for price, taken in matcher.taken_asks.items():
                assert taken <= matcher.book.size_at(False, price)
            for price, taken in matcher.taken_bids.items():
                assert taken <= matcher.book.size_at(True, price)
            for orders in (*matcher.bids.values(), *matcher.asks.values()):
                for order in orders:
                    assert 0 <= order.queue_ahead
        seen += 1
        if seen % 50 == 0:
            backtest.refresh_marks()
            backtest.account.check(backtest.fills)
    backtest.finish()
    assert len(backtest.fills) > 20
    backtest.account.check(backtest.fills)
