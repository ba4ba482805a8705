"""The compiled L2 path: the quoting market maker of examples/market_maker.py, the fill model
and the accounting in one loop over columnar events, compiled with Numba when it is installed
(`pip install quantsaas[fast]`; without it the same code runs as plain Python, slowly).

It exists for speed only and must agree with the reference engine (engine.py + fills.py +
queue.RiskAverse) fill for fill; tests/backtest/test_kernel.py runs both on the same streams.
Its scope is what it reproduces exactly: one instrument, the risk-averse queue, partial fills,
maker/taker fees, order latency (entry and cancel), zero market-data latency, and that one
strategy (`every_ns`, `size`, `max_lots`). Anything else runs on the reference engine.

Events are rows (`columns()`): a trade is one row; a book message is its level rows, a
snapshot first clearing the book; `last` marks a message's final row, after which the
strategy runs. Prices index a dense ladder between the stream's lowest and highest price, so
every book operation is an array access. Money is exact int64 in the units of money.py; a fee
is split as (notional // U) * rate + ceil((notional % U) * rate / U) so no product overflows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import numpy as np

from quantsaas.backtest.money import FEE_UNIT, Fees
from quantsaas.errors import ConfigError
from quantsaas.model import BookDelta, BookSnapshot, Instrument, Side, Trade

F = TypeVar("F", bound=Callable[..., Any])

try:  # pragma: no cover - depends on the optional extra
    from numba import njit as _njit

    COMPILED = True

    def compiled(function: F) -> F:
        return cast(F, _njit(cache=True, nogil=True)(function))

except ImportError:  # pragma: no cover
    COMPILED = False

    def compiled(function: F) -> F:
        return function


TRADE, LEVEL, CLEAR, NOOP = 0, 1, 2, 3
PENDING, OPEN, FILLED, CANCELED, REJECTED = 0, 1, 2, 3, 4


@dataclass(frozen=True)
class Columns:
    """One instrument's events as rows (see the module docstring)."""

    kind: np.ndarray
    side: np.ndarray
    """Trades: +1 buyer-initiated, -1 seller; levels: 0 bid, 1 ask."""
    price: np.ndarray
    size: np.ndarray
    ts: np.ndarray
    last: np.ndarray
    messages: int


def columns(events: Iterable[Trade | BookDelta | BookSnapshot], instrument: Instrument) -> Columns:
    kind: list[int] = []
    side: list[int] = []
    price: list[int] = []
    size: list[int] = []
    ts: list[int] = []
    last: list[bool] = []
    messages = 0
    for event in events:
        if event.instrument.key != instrument.key:
            continue
        messages += 1
        t = event.ts_event
        if type(event) is Trade:
            kind.append(TRADE)
            side.append(1 if event.side is Side.BUY else -1)
            price.append(event.price)
            size.append(event.size)
            ts.append(t)
            last.append(True)
            continue
        book: BookDelta | BookSnapshot = event  # type: ignore[assignment]
        rows = [(0, p, s) for p, s in book.bids] + [(1, p, s) for p, s in book.asks]
        if type(event) is BookSnapshot:
            rows.insert(0, (-1, 0, 0))
        if not rows:
            rows = [(-2, 0, 0)]
        for index, (which, p, s) in enumerate(rows):
            kind.append(CLEAR if which == -1 else NOOP if which == -2 else LEVEL)
            side.append(max(which, 0))
            price.append(p)
            size.append(s)
            ts.append(t)
            last.append(index == len(rows) - 1)
    return Columns(
        np.array(kind, dtype=np.int8),
        np.array(side, dtype=np.int8),
        np.array(price, dtype=np.int64),
        np.array(size, dtype=np.int64),
        np.array(ts, dtype=np.int64),
        np.array(last, dtype=np.bool_),
        messages,
    )


@dataclass(frozen=True)
class KernelResult:
    fills: np.ndarray
    """Rows of (order id, side +1/-1, price, size, maker 1/taker 0, fee, ts)."""
    cash: int
    position: int
    fees: int
    orders: int
    mark: int
    """Final mark at price_scale + 1 (mid * 10 when both sides exist)."""


def run_market_maker(
    cols: Columns,
    instrument: Instrument,
    every_ns: int,
    size: int,
    max_lots: int,
    fees: Fees,
    order_latency_ns: int,
    cash: int,
) -> KernelResult:
    """Run the compiled market maker over `cols`; `cash` in cash units (money.py)."""
    if not len(cols.kind):
        raise ConfigError("no events for the kernel")
    priced = cols.price[cols.kind != CLEAR]
    priced = priced[priced > 0]
    tick = instrument.tick_size
    low = int(priced.min()) if len(priced) else 0
    high = int(priced.max()) if len(priced) else 0
    ladder = (high - low) // tick + 1
    if ladder > 50_000_000:
        raise ConfigError("price range too wide for the dense ladder")
    notional_mult = 10  # one instrument: cash scale = price + size scale + 1
    fills, state = _kernel(
        cols.kind,
        cols.side,
        cols.price,
        cols.size,
        cols.ts,
        cols.last,
        low,
        tick,
        ladder,
        every_ns,
        size,
        size * max_lots,
        fees.maker,
        fees.taker,
        order_latency_ns,
        notional_mult,
        cash,
        FEE_UNIT,
    )
    return KernelResult(
        fills, int(state[0]), int(state[1]), int(state[2]), int(state[3]), int(state[4])
    )


@compiled
def _fee(notional: int, rate: int, unit: int) -> int:
    high, low = divmod(notional, unit)
    return high * rate - ((-(low * rate)) // unit)


@compiled
def _unrest(resting: np.ndarray, n_rest: int, o: int) -> int:
    """Order `o` leaves the resting set (swap-remove); the new count."""
    for k in range(n_rest):
        if resting[k] == o:
            resting[k] = resting[n_rest - 1]
            return n_rest - 1
    return n_rest


@compiled
def _fill(fills: np.ndarray, n: int, o: int, side: int, px: int, got: int, fee: int, t: int) -> int:
    """Row `n` of the fills table: a maker fill of order `o`; the new row count."""
    fills[n, 0] = o + 1
    fills[n, 1] = side
    fills[n, 2] = px
    fills[n, 3] = got
    fills[n, 4] = 1
    fills[n, 5] = fee
    fills[n, 6] = t
    return n + 1


@compiled
def _kernel(  # noqa: C901 - one loop on purpose: this is what gets compiled
    kind: np.ndarray,
    side: np.ndarray,
    price: np.ndarray,
    size: np.ndarray,
    ts: np.ndarray,
    last: np.ndarray,
    low: int,
    tick: int,
    ladder: int,
    every_ns: int,
    quote_size: int,
    limit: int,
    maker_rate: int,
    taker_rate: int,
    latency: int,
    mult: int,
    cash0: int,
    unit: int,
) -> tuple[np.ndarray, np.ndarray]:
    n = len(kind)
    bids = np.zeros(ladder, np.int64)
    asks = np.zeros(ladder, np.int64)
    taken_b = np.zeros(ladder, np.int64)
    taken_a = np.zeros(ladder, np.int64)
    best_b = -1
    best_a = ladder
    valid = False
    cap = 2 * n + 16
    o_side = np.zeros(cap, np.int64)
    o_px = np.zeros(cap, np.int64)
    o_size = np.zeros(cap, np.int64)
    o_filled = np.zeros(cap, np.int64)
    o_status = np.zeros(cap, np.int64)
    o_queue = np.zeros(cap, np.int64)
    o_seen = np.zeros(cap, np.int64)
    o_cancel = np.zeros(cap, np.bool_)
    orders = 0
    resting = np.zeros(64, np.int64)
    n_rest = 0
    q_due = np.zeros(cap, np.int64)
    q_order = np.zeros(cap, np.int64)
    q_is_cancel = np.zeros(cap, np.bool_)
    q_head = 0
    q_tail = 0
    fills = np.zeros((cap, 7), np.int64)
    n_fills = 0
    cash = cash0
    position = 0
    fees = 0
    quote_buy = -1
    quote_sell = -1
    next_quote = 0
    message_start = True
    order_buf = np.zeros(64, np.int64)
    clock = ts[0]
    for i in range(n):
        t = ts[i]
        if t < clock:
            t = clock  # the clock never goes back (engine.py)
        clock = t
        if message_start:
            # orders and cancels due by now reach the venue before this message
            while q_head < q_tail and q_due[q_head] <= t:
                o = q_order[q_head]
                is_cancel = q_is_cancel[q_head]
                q_head += 1
                if is_cancel:
                    if o_status[o] == OPEN:
                        o_status[o] = CANCELED
                        n_rest = _unrest(resting, n_rest, o)
                    continue
                idx = (o_px[o] - low) // tick
                if valid and (
                    (o_side[o] > 0 and best_a < ladder and best_a <= idx)
                    or (o_side[o] < 0 and best_b >= 0 and best_b >= idx)
                ):
                    o_status[o] = REJECTED  # post-only would take
                    continue
                o_status[o] = OPEN
                level = 0
                if valid and 0 <= idx < ladder:
                    level = bids[idx] if o_side[o] > 0 else asks[idx]
                o_queue[o] = level
                o_seen[o] = level
                resting[n_rest] = o
                n_rest += 1
        message_start = last[i]
        k_ = kind[i]
        if k_ == TRADE:
            px = price[i]
            trade_size = size[i]
            aggressor = side[i]
            budget = trade_size
            # resting orders on the passive side, best price first, then oldest first
            m = 0
            for k in range(n_rest):
                o = resting[k]
                if (aggressor < 0 and o_side[o] > 0 and o_px[o] >= px) or (
                    aggressor > 0 and o_side[o] < 0 and o_px[o] <= px
                ):
                    order_buf[m] = o
                    m += 1
            for a in range(m):
                for b in range(a + 1, m):
                    oa, ob = order_buf[a], order_buf[b]
                    better = o_px[ob] > o_px[oa] if aggressor < 0 else o_px[ob] < o_px[oa]
                    if better or (o_px[ob] == o_px[oa] and ob < oa):
                        order_buf[a], order_buf[b] = ob, oa
            for a in range(m):
                o = order_buf[a]
                if o_px[o] == px:
                    ahead = o_queue[o]
                    if ahead >= trade_size:
                        o_queue[o] = ahead - trade_size
                        left = 0
                    else:
                        o_queue[o] = 0
                        left = trade_size - ahead
                    amount = min(left, budget)
                else:
                    amount = budget
                if amount > 0 and budget > 0:
                    remaining = o_size[o] - o_filled[o]
                    got = min(amount, remaining)
                    if got > 0:
                        notional = o_px[o] * got * mult
                        fee = _fee(notional, maker_rate, unit)
                        cash += -o_side[o] * notional - fee
                        position += o_side[o] * got
                        fees += fee
                        o_filled[o] += got
                        n_fills = _fill(fills, n_fills, o, o_side[o], o_px[o], got, fee, t)
                        if o_filled[o] == o_size[o]:
                            o_status[o] = FILLED
                            n_rest = _unrest(resting, n_rest, o)
                    budget -= got
            continue
        if k_ == CLEAR:
            bids[:] = 0
            asks[:] = 0
            taken_b[:] = 0
            taken_a[:] = 0
            best_b = -1
            best_a = ladder
            valid = True  # a snapshot makes the book valid again (crossed: checked below)
            if not last[i]:
                continue
        elif k_ == LEVEL:
            if not valid:
                continue  # deltas wait for a snapshot
            idx = (price[i] - low) // tick
            qty = size[i]
            if side[i] == 0:
                bids[idx] = qty
                taken_b[idx] = 0
                if qty > 0 and idx > best_b:
                    best_b = idx
                elif qty == 0 and idx == best_b:
                    while best_b >= 0 and bids[best_b] == 0:
                        best_b -= 1
            else:
                asks[idx] = qty
                taken_a[idx] = 0
                if qty > 0 and idx < best_a:
                    best_a = idx
                elif qty == 0 and idx == best_a:
                    while best_a < ladder and asks[best_a] == 0:
                        best_a += 1
            if not last[i]:
                continue
        elif not last[i]:
            continue
        # -- the book message is complete --------------------------------------------------
        if not valid:
            continue
        if best_b >= 0 and best_a < ladder and best_b >= best_a:
            valid = False  # crossed: the book waits for a snapshot, like L2Book
            continue
        # queues follow their levels (risk-averse: never more than the level holds)
        for k in range(n_rest):
            o = resting[k]
            idx = (o_px[o] - low) // tick
            after = bids[idx] if o_side[o] > 0 else asks[idx]
            if o_seen[o] != after:
                if after < o_queue[o]:
                    o_queue[o] = after
                o_seen[o] = after
        # the opposite side reached a resting order: fill from what the book holds there
        for pass_side in (1, -1):
            m = 0
            for k in range(n_rest):
                o = resting[k]
                if o_side[o] == pass_side:
                    idx = (o_px[o] - low) // tick
                    if (pass_side > 0 and best_a <= idx) or (pass_side < 0 and best_b >= idx):
                        order_buf[m] = o
                        m += 1
            for a in range(m):
                for b in range(a + 1, m):
                    oa, ob = order_buf[a], order_buf[b]
                    better = o_px[ob] > o_px[oa] if pass_side > 0 else o_px[ob] < o_px[oa]
                    if better or (o_px[ob] == o_px[oa] and ob < oa):
                        order_buf[a], order_buf[b] = ob, oa
            for a in range(m):
                o = order_buf[a]
                idx = (o_px[o] - low) // tick
                if pass_side > 0:
                    j = best_a
                    while j <= idx and o_filled[o] < o_size[o]:
                        available = asks[j] - taken_a[j]
                        if asks[j] > 0 and available > 0:
                            got = min(available, o_size[o] - o_filled[o])
                            taken_a[j] += got
                            notional = o_px[o] * got * mult
                            fee = _fee(notional, maker_rate, unit)
                            cash += -notional - fee
                            position += got
                            fees += fee
                            o_filled[o] += got
                            n_fills = _fill(fills, n_fills, o, 1, o_px[o], got, fee, t)
                        j += 1
                else:
                    j = best_b
                    while j >= idx and o_filled[o] < o_size[o]:
                        available = bids[j] - taken_b[j]
                        if bids[j] > 0 and available > 0:
                            got = min(available, o_size[o] - o_filled[o])
                            taken_b[j] += got
                            notional = o_px[o] * got * mult
                            fee = _fee(notional, maker_rate, unit)
                            cash += notional - fee
                            position -= got
                            fees += fee
                            o_filled[o] += got
                            n_fills = _fill(fills, n_fills, o, -1, o_px[o], got, fee, t)
                        j -= 1
                if o_filled[o] == o_size[o]:
                    o_status[o] = FILLED
                    n_rest = _unrest(resting, n_rest, o)
        # -- the strategy: requote every `every_ns` ----------------------------------------
        if t < next_quote:
            continue
        next_quote = t + every_ns
        if best_b < 0 or best_a >= ladder:
            continue
        for pass_side in (1, -1):
            px = low + (best_b if pass_side > 0 else best_a) * tick
            allowed = (
                position + quote_size <= limit if pass_side > 0 else position - quote_size >= -limit
            )
            current = quote_buy if pass_side > 0 else quote_sell
            if current >= 0 and o_status[current] <= OPEN:
                if o_px[current] == px and allowed:
                    continue
                if not o_cancel[current]:
                    o_cancel[current] = True
                    q_due[q_tail] = t + latency
                    q_order[q_tail] = current
                    q_is_cancel[q_tail] = True
                    q_tail += 1
            if allowed:
                o = orders
                orders += 1
                o_side[o] = pass_side
                o_px[o] = px
                o_size[o] = quote_size
                q_due[q_tail] = t + latency
                q_order[q_tail] = o
                q_is_cancel[q_tail] = False
                q_tail += 1
                if pass_side > 0:
                    quote_buy = o
                else:
                    quote_sell = o
            elif pass_side > 0:
                quote_buy = -1
            else:
                quote_sell = -1
    mark = 0
    if valid and best_b >= 0 and best_a < ladder:
        mark = (2 * low + (best_b + best_a) * tick) * 5
    state = np.zeros(5, np.int64)
    state[0] = cash
    state[1] = position
    state[2] = fees
    state[3] = orders
    state[4] = mark
    return fills[:n_fills], state
