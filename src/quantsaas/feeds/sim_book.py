"""The order-book engine behind the simulated venue: one `MarketSimulator` per instrument.

Pure and deterministic (no wall clock, no asyncio); the model and its parameters are described
in `quantsaas.feeds.simulator`, which replays these simulators in real time.
"""

from __future__ import annotations

import bisect
import collections
import hashlib
import itertools
import math
import random

from quantsaas.feeds.sim_instruments import SimConfig, SimSpec
from quantsaas.model import BookDelta, BookSnapshot, Level, MarketEvent, Side, Ticker, Trade

NS = 1_000_000_000
DAY_NS = 86_400 * NS
SECONDS_PER_YEAR = 365.25 * 86_400
DEFAULT_EPOCH_NS = 1_704_067_200 * NS
"""Wall-clock time of simulated time 0 unless told otherwise (2024-01-01T00:00:00Z)."""

LIMIT_WEIGHT = 1.0
MARKET_WEIGHT = 0.12
PLACEMENT_ALPHA = 0.8
ORDERS_PER_LEVEL = 3
ORDER_SIGMA = 0.8
MARKET_SIZE_FACTOR = 1.5
MARKET_SIGMA = 1.0
MIN_LEVELS = 10
MAX_SWEEP = 12
MAX_LEAN = 30.0
GRID_FRACTION = 0.5
WARM_UP_PER_LEVEL = 25
_ALL = 1 << 62


def stream_seed(seed: int, symbol: str) -> int:
    """The seed of one symbol's random stream, independent of the other symbols."""
    digest = hashlib.sha256(f"quantsaas.sim:{seed}:{symbol}".encode()).digest()
    return int.from_bytes(digest[:16], "big")


def grid_ticks(ticks_per_event: float) -> int:
    """Grid step in ticks: the largest 1-2-5 number <= GRID_FRACTION x the move per event."""
    target = ticks_per_event * GRID_FRACTION
    best = 1
    magnitude = 1
    while magnitude <= target:
        for mantissa in (1, 2, 5):
            if mantissa * magnitude <= target:
                best = mantissa * magnitude
        magnitude *= 10
    return best


class _BookSide:
    """One side of the book keyed by `sign * grid price` (asks +1, bids -1): best key first."""

    __slots__ = ("sign", "buy", "sizes", "keys", "total", "changed")

    def __init__(self, sign: int) -> None:
        self.sign = sign
        self.buy = sign > 0
        """Whether the aggressor of a trade against this side is a buyer (the ask side)."""
        self.sizes: dict[int, int] = {}
        self.keys: list[int] = []
        self.total = 0
        self.changed: dict[int, int] = {}
        """Levels changed by the current event: key -> new size (0 deletes)."""

    def take(self, size: int, limit: int, trades: list[tuple[int, int, bool]]) -> None:
        """Execute `size` against levels with key <= `limit`, best first, one trade per level."""
        sizes, keys, changed = self.sizes, self.keys, self.changed
        sign, buy = self.sign, self.buy
        taken = 0
        while size and keys and keys[0] <= limit:
            key = keys[0]
            resting = sizes[key]
            if resting > size:
                sizes[key] = changed[key] = resting - size
                trades.append((sign * key, size, buy))
                taken += size
                break
            del sizes[key]
            del keys[0]
            changed[key] = 0
            trades.append((sign * key, resting, buy))
            taken += resting
            size -= resting
        self.total -= taken

    def rest(self, key: int, size: int, max_levels: int) -> None:
        """Add a resting order; a full side drops its worst level, or the order if it is worse."""
        sizes = self.sizes
        old = sizes.get(key)
        if old is not None:
            sizes[key] = self.changed[key] = old + size
            self.total += size
            return
        keys = self.keys
        if len(keys) >= max_levels:
            if key > keys[-1]:
                return
            self.remove(keys[-1], sizes[keys[-1]])
        bisect.insort(keys, key)
        sizes[key] = self.changed[key] = size
        self.total += size

    def remove(self, key: int, amount: int) -> None:
        sizes = self.sizes
        left = sizes[key] - amount
        if left:
            sizes[key] = left
        else:
            del sizes[key]
            del self.keys[bisect.bisect_left(self.keys, key)]
        self.changed[key] = left
        self.total -= amount

    def deltas(self, unit: int) -> tuple[Level, ...]:
        scale = self.sign * unit
        levels = tuple([(scale * key, size) for key, size in self.changed.items()])
        self.changed.clear()
        return levels

    def levels(self, unit: int) -> tuple[Level, ...]:
        scale = self.sign * unit
        sizes = self.sizes
        return tuple([(scale * key, sizes[key]) for key in self.keys])


class MarketSimulator:
    """One instrument's book in simulated time; pure and deterministic (no clock, no asyncio).

    Simulated nanosecond `t` is published as `ts_event = epoch_ns + t`; `ts_recv` is the value
    passed to `step`/`run_until`/`snapshot`, or `ts_event` when none is given.
    """

    def __init__(self, spec: SimSpec, config: SimConfig, epoch_ns: int = DEFAULT_EPOCH_NS) -> None:
        instrument = spec.instrument
        self.instrument = instrument
        self.epoch_ns = epoch_ns
        rng = random.Random(stream_seed(config.seed, instrument.symbol))
        self._random = rng.random
        self._gauss = rng.gauss
        self._expovariate = rng.expovariate
        vol = config.vol_for(instrument.symbol)
        rate = config.events_per_second
        move = spec.start_price / instrument.tick_size * vol / math.sqrt(rate * SECONDS_PER_YEAR)
        self.unit = instrument.tick_size * grid_ticks(move)
        """Raw price step of the grid orders are placed on (a multiple of the tick)."""
        self._rate_per_ns = rate / NS
        self._vol_per_sqrt_ns = vol / math.sqrt(SECONDS_PER_YEAR * NS)
        self._drift_per_ns = -0.5 * vol * vol / (SECONDS_PER_YEAR * NS)
        self._log_f = math.log(spec.start_price / self.unit)
        self._f = spec.start_price / self.unit
        """Latent fair value in grid steps."""
        levels = config.depth_levels
        self._log_floor = math.log(2 * levels)
        weights = [(d + 1) ** -PLACEMENT_ALPHA for d in range(levels)]
        self._placement = [w / sum(weights) for w in itertools.accumulate(weights)]
        self._max_levels = 2 * levels
        self._lot = instrument.lot_size
        order_lots = spec.order_size / instrument.lot_size
        self._order_scale = order_lots * math.exp(-ORDER_SIGMA * ORDER_SIGMA / 2)
        self._market_scale = (
            MARKET_SIZE_FACTOR * order_lots * math.exp(-MARKET_SIGMA * MARKET_SIGMA / 2)
        )
        target_depth = 2 * levels * ORDERS_PER_LEVEL * spec.order_size
        self._theta = (LIMIT_WEIGHT - MARKET_WEIGHT * MARKET_SIZE_FACTOR) / target_depth

        self._bids = _BookSide(-1)
        self._asks = _BookSide(1)
        self._trades: list[tuple[int, int, bool]] = []
        """Executions of the current event: (grid price, size, aggressor is buyer)."""
        for side in (self._bids, self._asks):
            first = -math.floor(self._f) if side is self._bids else math.floor(self._f) + 1
            for key in range(first, first + levels):
                side.rest(key, self._level_size(), self._max_levels)
        for _ in range(WARM_UP_PER_LEVEL * levels):
            self._act()
        self._bids.changed.clear()
        self._asks.changed.clear()
        self._trades.clear()

        self._sim_ns = 0
        self._f_ns = 0
        self._next_ns = self._gap()
        self._ticker_ns = max(1, round(config.ticker_interval_s * NS))
        self._next_ticker_ns = self._ticker_ns
        self._sequence = 0
        self._trade_count = 0
        self._last_price: int | None = None
        self._interval_volume = 0
        self._volume_24h = 0
        self._volume_buckets: collections.deque[tuple[int, int]] = collections.deque()

    @property
    def sim_ns(self) -> int:
        """Current simulated time in ns since the start."""
        return self._sim_ns

    @property
    def next_event_ns(self) -> int:
        return min(self._next_ns, self._next_ticker_ns)

    @property
    def sequence(self) -> int:
        """Sequence of the last book message handed out."""
        return self._sequence

    @property
    def fair_value(self) -> float:
        """The latent fair value, in raw price units."""
        return self._f * self.unit

    @property
    def mid(self) -> float:
        """Mid of the true book, in raw price units."""
        return (self._asks.keys[0] - self._bids.keys[0]) * self.unit / 2

    def best_bid(self) -> Level:
        key = self._bids.keys[0]
        return (-key * self.unit, self._bids.sizes[key])

    def best_ask(self) -> Level:
        key = self._asks.keys[0]
        return (key * self.unit, self._asks.sizes[key])

    def book(self) -> tuple[tuple[Level, ...], tuple[Level, ...]]:
        """The true book: (bids, asks), each best first, raw prices and sizes."""
        return self._bids.levels(self.unit), self._asks.levels(self.unit)

    def snapshot(self, ts_recv: int | None = None) -> BookSnapshot:
        """A snapshot of the true book at the current simulated time (a book message)."""
        self._sequence += 1
        bids, asks = self.book()
        ts = self.epoch_ns + self._sim_ns
        recv = ts if ts_recv is None else ts_recv
        return BookSnapshot(self.instrument, bids, asks, self._sequence, ts, recv)

    def step(self, ts_recv: int | None = None) -> list[MarketEvent]:
        """Advance to the next occurrence (order-flow event or ticker); return its events."""
        out: list[MarketEvent] = []
        if self._next_ticker_ns <= self._next_ns:
            self._ticker(out, ts_recv)
        else:
            self._event(out, ts_recv)
        return out

    def run_until(self, sim_ns: int, ts_recv: int | None = None) -> list[MarketEvent]:
        """Every event with simulated time <= `sim_ns`, in order; the clock ends at `sim_ns`."""
        out: list[MarketEvent] = []
        while True:
            if self._next_ticker_ns <= self._next_ns:
                if self._next_ticker_ns > sim_ns:
                    break
                self._ticker(out, ts_recv)
            else:
                if self._next_ns > sim_ns:
                    break
                self._event(out, ts_recv)
        if sim_ns > self._sim_ns:
            self._sim_ns = sim_ns
        return out

    def _gap(self) -> int:
        return 1 + int(self._expovariate(self._rate_per_ns))

    def _event(self, out: list[MarketEvent], ts_recv: int | None) -> None:
        t = self._next_ns
        dt = t - self._f_ns
        self._f_ns = self._sim_ns = t
        shock = self._vol_per_sqrt_ns * math.sqrt(dt) * self._gauss()
        self._log_f += self._drift_per_ns * dt + shock
        if self._log_f < self._log_floor:
            self._log_f = 2 * self._log_floor - self._log_f  # reflect: bids need room above 0
        self._f = math.exp(self._log_f)
        self._act()
        self._next_ns = t + self._gap()

        instrument = self.instrument
        unit = self.unit
        ts = self.epoch_ns + t
        recv = ts if ts_recv is None else ts_recv
        trades = self._trades
        if trades:
            count = self._trade_count
            volume = 0
            for price, size, buy in trades:
                count += 1
                volume += size
                side = Side.BUY if buy else Side.SELL
                out.append(Trade(instrument, price * unit, size, side, str(count), ts, recv))
            self._trade_count = count
            self._interval_volume += volume
            self._last_price = trades[-1][0] * unit
            trades.clear()
        self._sequence += 1
        bids = self._bids.deltas(unit)
        asks = self._asks.deltas(unit)
        out.append(BookDelta(instrument, bids, asks, self._sequence, ts, recv))

    def _ticker(self, out: list[MarketEvent], ts_recv: int | None) -> None:
        t = self._next_ticker_ns
        self._next_ticker_ns = t + self._ticker_ns
        self._sim_ns = t
        buckets = self._volume_buckets
        if self._interval_volume:
            buckets.append((t, self._interval_volume))
            self._volume_24h += self._interval_volume
            self._interval_volume = 0
        while buckets and buckets[0][0] <= t - DAY_NS:
            self._volume_24h -= buckets.popleft()[1]
        bid, bid_size = self.best_bid()
        ask, ask_size = self.best_ask()
        ts = self.epoch_ns + t
        recv = ts if ts_recv is None else ts_recv
        last, volume = self._last_price, self._volume_24h
        out.append(Ticker(self.instrument, bid, bid_size, ask, ask_size, last, volume, ts, recv))

    def _order_size(self) -> int:
        lots = int(self._order_scale * math.exp(ORDER_SIGMA * self._gauss()) + 0.5)
        return (lots or 1) * self._lot

    def _level_size(self) -> int:
        return sum([self._order_size() for _ in range(ORDERS_PER_LEVEL)])

    def _act(self) -> None:
        bids, asks = self._bids, self._asks
        pick = self._random() * (
            LIMIT_WEIGHT + MARKET_WEIGHT + self._theta * (bids.total + asks.total)
        )
        if pick < LIMIT_WEIGHT:
            self._limit()
        elif pick < LIMIT_WEIGHT + MARKET_WEIGHT:
            self._market()
        else:
            self._cancel()
        if len(bids.keys) < MIN_LEVELS:
            self._replenish(bids, asks)
        if len(asks.keys) < MIN_LEVELS:
            self._replenish(asks, bids)

    def _limit(self) -> None:
        distance = bisect.bisect_right(self._placement, self._random())
        size = self._order_size()
        if self._random() < 0.5:
            own, other = self._bids, self._asks
            price = max(1, math.floor(self._f) - distance)
        else:
            own, other = self._asks, self._bids
            price = math.ceil(self._f) + distance
        if other.keys and other.keys[0] <= other.sign * price:
            other.take(_ALL, other.sign * price, self._trades)
        own.rest(own.sign * price, size, self._max_levels)

    def _market(self) -> None:
        bids, asks = self._bids, self._asks
        lean = min(MAX_LEAN, max(-MAX_LEAN, self._f - (asks.keys[0] - bids.keys[0]) / 2))
        lots = int(self._market_scale * math.exp(MARKET_SIGMA * self._gauss()) + 0.5)
        other = asks if self._random() * (1 + math.exp(-lean)) < 1 else bids
        other.take(
            (lots or 1) * self._lot,
            other.keys[min(MAX_SWEEP, len(other.keys) - 1) - 1],
            self._trades,
        )

    def _cancel(self) -> None:
        bids, asks = self._bids, self._asks
        pick = self._random() * (bids.total + asks.total)
        side = bids if pick < bids.total else asks
        if side is asks:
            pick -= bids.total
        sizes = side.sizes
        key = side.keys[-1]
        for key in side.keys:
            pick -= sizes[key]
            if pick < 0:
                break
        side.remove(key, min(sizes[key], self._order_size()))

    def _replenish(self, side: _BookSide, other: _BookSide) -> None:
        """Refill a thin side behind its worst level and behind anything traded this event."""
        edge = side.keys[-1] if side.keys else -other.keys[0]
        for price, _, _ in self._trades:
            edge = max(edge, side.sign * price)
        key = edge + 1
        while len(side.keys) < MIN_LEVELS and side.sign * key > 0:
            side.rest(key, self._level_size(), self._max_levels)
            key += 1
