"""Runs inside hftbacktest's own venv (not ours): the same quoting market maker over the same
synthetic L2 stream, timed cold (first call: Numba JIT + load) and warm.

Usage: HBT_PYTHON bench/hftbacktest_runner.py EVENTS.npy TICK LOT SIZE EVERY_NS LATENCY_NS
MAX_LOTS MAKER TAKER REPEATS -> one JSON line. EVENTS.npy holds hftbacktest's `event_dtype`
rows written by bench_backtest_l2.py. Settings: constant order latency (entry = response),
risk-averse queue, partial fills, value fees (maker may be negative), linear asset.
"""

import json
import sys
import time
from typing import Any

import numpy as np
from hftbacktest import (  # type: ignore[import-not-found,import-untyped,unused-ignore]
    GTX,
    LIMIT,
    BacktestAsset,
    HashMapMarketDepthBacktest,
)
from numba import njit  # type: ignore[import-not-found,import-untyped,unused-ignore]


@njit(cache=True)
def market_maker(hbt, every_ns, size, max_lots):  # type: ignore[no-untyped-def]
    """Every `every_ns`: quote `size` at the best bid and ask (post-only), cancel quotes whose
    price is no longer the best, stop the side that would pass `max_lots` lots."""
    order_id = 0
    limit = size * max_lots
    while hbt.elapse(every_ns) == 0:
        hbt.clear_inactive_orders(0)
        depth = hbt.depth(0)
        best_bid, best_ask = depth.best_bid_tick, depth.best_ask_tick
        position = hbt.position(0)
        have_bid = False
        have_ask = False
        orders = hbt.orders(0)
        values = orders.values()
        while values.has_next():
            order = values.get()
            if order.side == 1:
                if order.price_tick == best_bid and position + size <= limit + 1e-12:
                    have_bid = True
                elif order.cancellable:
                    hbt.cancel(0, order.order_id, False)
            else:
                if order.price_tick == best_ask and position - size >= -limit - 1e-12:
                    have_ask = True
                elif order.cancellable:
                    hbt.cancel(0, order.order_id, False)
        if not have_bid and position + size <= limit + 1e-12:
            order_id += 1
            hbt.submit_buy_order(0, order_id, best_bid * depth.tick_size, size, GTX, LIMIT, False)
        if not have_ask and position - size >= -limit - 1e-12:
            order_id += 1
            hbt.submit_sell_order(0, order_id, best_ask * depth.tick_size, size, GTX, LIMIT, False)
    return order_id


def run_once(
    data: Any,
    tick: float,
    lot: float,
    size: float,
    every: int,
    latency: int,
    max_lots: int,
    maker: float,
    taker: float,
) -> Any:
    asset = (
        BacktestAsset()
        .data(data)
        .linear_asset(1.0)
        .constant_order_latency(latency, latency)
        .risk_adverse_queue_model()
        .partial_fill_exchange()
        .trading_value_fee_model(maker, taker)
        .tick_size(tick)
        .lot_size(lot)
    )
    hbt = HashMapMarketDepthBacktest([asset])
    began = time.perf_counter()
    orders = market_maker(hbt, every, size, max_lots)
    elapsed = time.perf_counter() - began
    values = hbt.state_values(0)
    state = (float(values.position), float(values.balance), int(values.num_trades))
    hbt.close()
    return elapsed, orders, state


def main() -> None:
    path = sys.argv[1]
    tick, lot, size = float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
    every, latency, max_lots = int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
    maker, taker, repeats = float(sys.argv[8]), float(sys.argv[9]), int(sys.argv[10])
    data = np.load(path)
    began = time.perf_counter()
    cold, orders, state = run_once(data, tick, lot, size, every, latency, max_lots, maker, taker)
    cold_total = time.perf_counter() - began
    warm = sorted(
        run_once(data, tick, lot, size, every, latency, max_lots, maker, taker)[0]
        for _ in range(repeats)
    )
    print(
        json.dumps(
            {
                "rows": len(data),
                "cold_s": cold_total,
                "warm_s": warm[len(warm) // 2],
                "orders": orders,
                "position": state[0],
                "trades": state[2],
            }
        )
    )


if __name__ == "__main__":
    main()
