"""Saved backtest results (GET /api/v1/backtests[/{id}]) as DataFrames.

The server keeps each run's result document (backtest/results.py on the server): money as exact
decimal text, curves thinned for drawing, the trade list and fills. Here the list becomes one
row per (result, quote currency) with the headline metrics, and one result becomes a
`BacktestResult` of DataFrames (metrics, equity/drawdown curve, trades, fills), decimal text as
Arrow `decimal128` columns, times as `timestamp[ns, UTC]`. The document itself stays at hand
(`document`) for anything not tabulated. Needs pandas (the `client` extra).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
import pyarrow as pa

from quantsaas.client.errors import ProtocolViolation
from quantsaas.client.frames import text_decimals, timestamps, to_pandas
from quantsaas.errors import quote

HEADLINE = ("total_return", "sharpe", "max_drawdown")


@dataclass(frozen=True)
class BacktestResult:
    id: str
    document: dict[str, Any]
    """The whole result as the server keeps it (strategy, data, config, metrics, ...)."""
    metrics: pd.DataFrame
    """One row per quote currency: initial_cash, cash, equity (exact) and every metric."""
    curve: pd.DataFrame
    """ts, then per currency `{currency}_equity` (exact) and `{currency}_drawdown`."""
    trades: pd.DataFrame
    """Round trips: venue, symbol, direction, entry, exit, size, prices, fees, pnl, fills."""
    fills: pd.DataFrame
    """Fills (the server keeps the first ones): order_id, venue, symbol, side, price, size,
    liquidity, fee, ts."""


def _decimal_column(values: list[Any]) -> pa.Array:
    return text_decimals(pa.array([None if v is None else str(v) for v in values], pa.string()))


def _table(
    rows: list[dict[str, Any]], decimals: tuple[str, ...], times: tuple[str, ...]
) -> pd.DataFrame:
    if not rows:
        return to_pandas(pa.table({}))
    columns: dict[str, Any] = {}
    for name in rows[0]:
        values = [row.get(name) for row in rows]
        if name in decimals:
            columns[name] = _decimal_column(values)
        elif name in times:
            columns[name.removesuffix("_ns")] = timestamps(values)
        else:
            columns[name] = pa.array(values)
    return to_pandas(pa.table(columns))


def summaries_frame(body: Any) -> pd.DataFrame:
    """GET /api/v1/backtests -> one row per (result, currency), newest first."""
    rows = []
    for item in body["data"]:
        strategy = item.get("strategy") or {}
        for currency, headline in (item.get("headline") or {"": {}}).items():
            rows.append(
                {
                    "id": item["id"],
                    "created": item.get("created"),
                    "strategy": strategy.get("name"),
                    "data": (item.get("data") or {}).get("kind"),
                    "currency": currency or None,
                    "equity": headline.get("equity"),
                    **{name: headline.get(name) for name in HEADLINE},
                    "trades": item.get("trade_count"),
                }
            )
    frame = _table(rows, ("equity",), ())
    if len(frame):
        frame["created"] = pd.to_datetime(frame["created"], utc=True)
    return frame


def result_of(document: Any) -> BacktestResult:
    """GET /api/v1/backtests/{id} -> its DataFrames."""
    if not isinstance(document, dict) or not isinstance(document.get("id"), str):
        raise ProtocolViolation(f"not a backtest result: {quote(document)}")
    currencies: dict[str, Any] = document.get("currencies") or {}
    metric_rows = [
        {
            "currency": currency,
            "initial_cash": block.get("initial_cash"),
            "cash": block.get("cash"),
            "equity": block.get("equity"),
            **(block.get("metrics") or {}),
        }
        for currency, block in currencies.items()
    ]
    money = ("initial_cash", "cash", "equity", "fees", "maker_fees", "taker_fees")
    curve: dict[str, Any] = {"ts": timestamps(document.get("curve_ts") or [])}
    for currency, block in currencies.items():
        points = block.get("curve") or {}
        curve[f"{currency}_equity"] = _decimal_column(points.get("equity") or [])
        curve[f"{currency}_drawdown"] = pa.array(points.get("drawdown") or [], pa.float64())
    trade_money = ("size", "entry_price", "exit_price", "fees", "pnl")
    fill_money = ("price", "size", "fee")
    return BacktestResult(
        id=document["id"],
        document=document,
        metrics=_table(metric_rows, money, ()),
        curve=to_pandas(pa.table(curve)),
        trades=_table(document.get("trades") or [], trade_money, ("entry_ns", "exit_ns")),
        fills=_table(document.get("fills") or [], fill_money, ("ts_ns",)),
    )
