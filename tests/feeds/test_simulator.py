"""The market simulator: book invariants, conservation, determinism, volatility, rate, feed."""

from __future__ import annotations

import asyncio
import math
import statistics
import time
from collections import defaultdict

import pytest

from quantsaas.errors import ConfigError, UnknownInstrument
from quantsaas.feeds.base import BooksStale, FeedState
from quantsaas.feeds.simulator import (
    SIM_VENUE,
    MarketSimulator,
    SimConfig,
    SimulatorFeed,
    default_instruments,
    select_instruments,
    sim_instrument,
    sim_spec,
)
from quantsaas.model import (
    BookDelta,
    BookSnapshot,
    Instrument,
    Level,
    MarketEvent,
    Side,
    Ticker,
    Trade,
)

NS = 1_000_000_000
SYMBOLS = [instrument.symbol for instrument in default_instruments()]


class RefBook:
    """A deliberately naive L2 book rebuilt from the published events."""

    def __init__(self, snapshot: BookSnapshot) -> None:
        self.instrument = snapshot.instrument
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}
        self.sequence = 0
        self.load(snapshot)

    def load(self, snapshot: BookSnapshot) -> None:
        assert [p for p, _ in snapshot.bids] == sorted((p for p, _ in snapshot.bids), reverse=True)
        assert [p for p, _ in snapshot.asks] == sorted(p for p, _ in snapshot.asks)
        for price, size in snapshot.bids + snapshot.asks:
            self.check_level(price, size)
            assert size > 0
        self.bids = dict(snapshot.bids)
        self.asks = dict(snapshot.asks)
        self.sequence = snapshot.sequence
        self.check_uncrossed()

    def apply(self, delta: BookDelta) -> None:
        assert delta.sequence == self.sequence + 1
        self.sequence = delta.sequence
        assert delta.bids or delta.asks
        for side, changes in ((self.bids, delta.bids), (self.asks, delta.asks)):
            for price, size in changes:
                self.check_level(price, size)
                assert size >= 0
                if size:
                    side[price] = size
                else:
                    assert price in side, "delete of a level that does not exist"
                    del side[price]
        self.check_uncrossed()

    def check_level(self, price: int, size: int) -> None:
        assert price > 0 and self.instrument.on_tick_grid(price)
        assert self.instrument.on_lot_grid(size)

    def check_uncrossed(self) -> None:
        assert self.bids and self.asks, "a side of the book emptied"
        assert self.best_ask()[0] - self.best_bid()[0] >= self.instrument.tick_size

    def best_bid(self) -> Level:
        price = max(self.bids)
        return price, self.bids[price]

    def best_ask(self) -> Level:
        price = min(self.asks)
        return price, self.asks[price]

    def levels(self) -> tuple[tuple[Level, ...], tuple[Level, ...]]:
        bids = tuple(sorted(self.bids.items(), reverse=True))
        return bids, tuple(sorted(self.asks.items()))


def check_step(book: RefBook, events: list[MarketEvent]) -> int:
    """Apply one simulator step to `book`, checking trades against the book they hit."""
    *trades, last = events
    if isinstance(last, Ticker):
        assert not trades
        assert (last.bid, last.bid_size) == book.best_bid()
        assert (last.ask, last.ask_size) == book.best_ask()
        return 0
    assert isinstance(last, BookDelta)
    assert all(isinstance(trade, Trade) for trade in trades)
    if not trades:
        book.apply(last)
        return 0
    sides = {trade.side for trade in trades if isinstance(trade, Trade)}
    assert len(sides) == 1
    buy = sides.pop() is Side.BUY
    hit = book.asks if buy else book.bids
    before = dict(hit)
    prices = [trade.price for trade in trades if isinstance(trade, Trade)]
    assert prices[0] == (book.best_ask() if buy else book.best_bid())[0]
    assert prices == sorted(prices, reverse=not buy), "a sweep walks the book outwards"
    assert len(set(prices)) == len(prices), "one trade per level"
    traded: dict[int, int] = defaultdict(int)
    for trade in trades:
        assert isinstance(trade, Trade)
        assert trade.price in before, "trade at a price with no resting level"
        assert 0 < trade.size <= before[trade.price]
        assert book.instrument.on_lot_grid(trade.size)
        assert trade.ts_event == last.ts_event
        traded[trade.price] += trade.size
    book.apply(last)
    removed = {p: size - hit.get(p, 0) for p, size in before.items() if hit.get(p, 0) < size}
    assert removed == traded, "executions must remove exactly the traded size from the book"
    return sum(traded.values())


@pytest.mark.parametrize("rate", [50.0, 10_000.0])
@pytest.mark.parametrize("symbol", SYMBOLS)
def test_book_invariants_and_volume_conservation(symbol: str, rate: float) -> None:
    sim = MarketSimulator(sim_spec(symbol), SimConfig(events_per_second=rate))
    book = RefBook(sim.snapshot())
    assert book.sequence == 1
    traded = trade_count = tickers = 0
    depths: list[int] = []
    last_ts = 0
    last_price = None
    for step in range(6000):
        events = sim.step()
        assert events and all(event.ts_event >= last_ts for event in events)
        last_ts = events[-1].ts_event
        trades = [event for event in events if isinstance(event, Trade)]
        if trades:
            last_price = trades[-1].price
        trade_count += len(trades)
        if isinstance(events[-1], Ticker):
            tickers += 1
            assert events[-1].last == last_price
            assert events[-1].volume_24h == traded
        traded += check_step(book, events)
        if step % 100 == 0:
            depths += [len(book.bids), len(book.asks)]
    assert book.levels() == sim.book()
    assert book.sequence == sim.sequence
    assert trade_count > 100
    assert tickers >= 1 if rate == 50.0 else tickers == 0
    assert min(depths) >= 10 and statistics.mean(depths) >= 24, "dozens of levels per side"


def test_spread_is_a_few_ticks_for_coarse_tick_markets() -> None:
    for symbol in ("SOL/USD", "ADA/USD"):
        sim = MarketSimulator(sim_spec(symbol), SimConfig())
        spreads = []
        for _ in range(5000):
            sim.step()
            spreads.append((sim.best_ask()[0] - sim.best_bid()[0]) // sim.instrument.tick_size)
        assert min(spreads) >= 1
        assert statistics.mean(spreads) < 3
        assert statistics.median(spreads) <= 2


def stream(symbol: str, config: SimConfig, steps: int = 3000) -> list[MarketEvent]:
    sim = MarketSimulator(sim_spec(symbol), config)
    events: list[MarketEvent] = [sim.snapshot()]
    for _ in range(steps):
        events += sim.step()
    return events


def test_same_seed_same_stream_and_other_seed_another() -> None:
    first = stream("ETH/USD", SimConfig(seed=11))
    again = stream("ETH/USD", SimConfig(seed=11))
    other = stream("ETH/USD", SimConfig(seed=12))
    assert first == again
    assert repr(first) == repr(again)
    assert first[0] != other[0]
    assert [repr(event) for event in first[1:]] != [repr(event) for event in other[1:]]


def test_a_symbol_stream_does_not_depend_on_the_other_symbols() -> None:
    eth = sim_instrument("ETH/USD")
    alone = SimulatorFeed([eth]).simulator(eth)
    together = SimulatorFeed().simulator(eth)
    assert alone.snapshot() == together.snapshot()
    assert alone.run_until(20 * NS) == together.run_until(20 * NS)


def realised_vol(values: list[float], every_s: float) -> float:
    returns = [math.log(b / a) for a, b in zip(values, values[1:], strict=False)]
    return math.sqrt(statistics.fmean(r * r for r in returns) * 365.25 * 86_400 / every_s)


@pytest.mark.parametrize(("symbol", "vol"), [("BTC/USD", 0.4), ("SOL/USD", 1.2)])
def test_realised_volatility_of_the_mid_matches_the_configured_one(symbol: str, vol: float) -> None:
    sim = MarketSimulator(sim_spec(symbol), SimConfig(events_per_second=1, annual_vol=vol))
    mids = [sim.mid]
    for minute in range(1, 2 * 24 * 60 + 1):
        sim.run_until(minute * 60 * NS)
        mids.append(sim.mid)
    realised = realised_vol(mids, 60)
    assert vol * 0.75 < realised < vol * 1.25, realised


@pytest.mark.parametrize(("rate", "seconds"), [(10.0, 2000), (10_000.0, 2)])
def test_event_rate_matches_the_configured_rate(rate: float, seconds: int) -> None:
    config = SimConfig(events_per_second=rate, ticker_interval_s=0.5)
    sim = MarketSimulator(sim_spec("ADA/USD"), config)
    events = sim.run_until(seconds * NS)
    deltas = [event for event in events if isinstance(event, BookDelta)]
    tickers = [event for event in events if isinstance(event, Ticker)]
    assert len(tickers) == seconds * 2
    assert abs(len(deltas) / (rate * seconds) - 1) < 0.05
    gaps = [b.ts_event - a.ts_event for a, b in zip(deltas, deltas[1:], strict=False)]
    assert 0.9 < statistics.pstdev(gaps) / statistics.fmean(gaps) < 1.1, "Poisson arrivals"
    assert sim.sim_ns == seconds * NS


def test_instruments_and_lookup() -> None:
    instruments = default_instruments()
    assert [i.symbol for i in instruments] == ["BTC/USD", "ETH/USD", "SOL/USD", "ADA/USD"]
    for instrument in instruments:
        spec = sim_spec(instrument)
        assert instrument.venue == SIM_VENUE
        assert instrument.on_tick_grid(spec.start_price)
        assert instrument.on_lot_grid(spec.order_size) and spec.order_size > 0
    assert sim_spec("BTC/USD").start_price == 6_000_000
    chosen = select_instruments("btc-usd, ETH/USD")
    assert [i.symbol for i in chosen] == ["BTC/USD", "ETH/USD"]
    assert select_instruments(()) == instruments
    with pytest.raises(UnknownInstrument):
        select_instruments("DOGE/USD")
    with pytest.raises(UnknownInstrument):
        SimulatorFeed([Instrument("kraken", "BTC", "USD", "XBT/USD", 1, 8, 1, 1)])


@pytest.mark.parametrize(
    "settings",
    [
        {"events_per_second": 0},
        {"events_per_second": 0.5},
        {"events_per_second": 100_001},
        {"events_per_second": math.nan},
        {"annual_vol": 0},
        {"annual_vol": -0.2},
        {"annual_vol": math.inf},
        {"symbol_vols": (("DOGE/USD", 0.5),)},
        {"symbol_vols": (("ADA/USD", 0.0),)},
        {"ticker_interval_s": 0},
        {"depth_levels": 3},
        {"seed": "seven"},
        {"wakeup_s": 0},
    ],
)
def test_bad_config_is_rejected(settings: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        SimConfig(**settings)  # type: ignore[arg-type]


def test_config_limits_are_accepted() -> None:
    SimConfig(events_per_second=1)
    SimConfig(events_per_second=100_000, symbol_vols=(("ADA/USD", 1.5),))
    assert SimConfig(symbol_vols=(("ADA/USD", 1.5),)).vol_for("ADA/USD") == 1.5
    assert SimConfig(annual_vol=0.3).vol_for("BTC/USD") == 0.3


def state_of(feed: SimulatorFeed) -> FeedState:
    return feed.stats.state


@pytest.mark.asyncio
async def test_feed_runs_in_real_time_and_resyncs_on_request() -> None:
    config = SimConfig(events_per_second=2000, ticker_interval_s=0.2)
    instruments = select_instruments("BTC/USD,ADA/USD")
    btc, ada = instruments
    feed = SimulatorFeed(instruments, config)
    assert feed.venue == "sim" and state_of(feed) is FeedState.STARTING
    events: list[MarketEvent] = []
    requested_at: dict[str, int] = {}

    def sink(event: MarketEvent | BooksStale) -> None:
        assert not isinstance(event, BooksStale)  # the simulator never loses its books
        events.append(event)
        # a trade is always followed by its own delta in the same batch: that one must be dropped
        if len(events) >= 300 and "inside" not in requested_at and isinstance(event, Trade):
            if event.instrument == btc:
                requested_at["inside"] = len(events)
                feed.request_resync(btc, "test: inside the sink")

    started = time.time_ns()
    task = asyncio.create_task(feed.run(sink))
    await asyncio.sleep(0.5)
    assert state_of(feed) is FeedState.LIVE
    requested_at["outside"] = len(events)
    feed.request_resync(btc, "test: between batches")
    await asyncio.sleep(0.5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert state_of(feed) is FeedState.STOPPED
    assert feed.stats.resyncs == 2
    assert feed.stats.messages == len(events)
    assert feed.stats.bytes > 0

    for instrument in instruments:
        own = [e for e in events if e.instrument == instrument]
        assert isinstance(own[0], BookSnapshot)
        book = RefBook(own[0])
        for event in own[1:]:
            assert started <= event.ts_event <= event.ts_recv <= time.time_ns()
            if isinstance(event, BookSnapshot):
                assert event.sequence > book.sequence
                book.load(event)
            elif isinstance(event, BookDelta):
                book.apply(event)
        assert book.levels() == feed.simulator(instrument).book()
        deltas = sum(isinstance(e, BookDelta) for e in own)
        due = config.events_per_second * (time.time_ns() - started) / NS
        assert 0.5 * config.events_per_second < deltas < 1.1 * due

    for when in requested_at.values():
        after = [e for e in events[when:] if e.instrument == btc]
        first_book_message = next(e for e in after if isinstance(e, BookSnapshot | BookDelta))
        assert isinstance(first_book_message, BookSnapshot)
    assert sum(isinstance(e, BookSnapshot) and e.instrument == ada for e in events) == 1
