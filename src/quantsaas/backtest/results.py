"""Backtest results: one JSON document per run, saved per owner, listed and read back.

    {data_dir}/backtests/{owner}/{id}.json       owner = u{user id} (served by the API), or local

A result holds what is needed to trust and show a run: the strategy (name, file hash,
parameters), the data (kind, instruments, range, events), the model settings (latencies,
fees, queue model, partial fills, cash), the metrics (metrics.py) per quote currency, the
exact final state, the trade list, the fills (the first MAX_FILLS), and the equity, drawdown
and mark curves (at most MAX_POINTS points, thinned evenly) for the dashboard. Money is exact
decimal text; curve values are decimal text too (the dashboard turns them into numbers only
to draw them). Files are written whole under a temporary name and renamed.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import secrets
from pathlib import Path
from typing import Any, Protocol

import orjson

from quantsaas.backtest.engine import BacktestConfig, Curve
from quantsaas.backtest.metrics import compute, drawdown
from quantsaas.backtest.money import Account, Units
from quantsaas.backtest.orders import Fill, Order
from quantsaas.backtest.roundtrips import round_trips
from quantsaas.errors import StorageError
from quantsaas.model import Instrument, format_fixed

MAX_FILLS = 10_000
MAX_POINTS = 5_000
MAX_TRADES = 10_000
_ID = re.compile(r"^[0-9]{8}T[0-9]{6}-[0-9a-f]{8}$")
_OWNER = re.compile(r"^(u[0-9]{1,18}|local)$")


class Run(Protocol):
    """What a finished run exposes (a `Backtest` or a `VectorRun`)."""

    instruments: list[Instrument]
    units: Units
    account: Account
    orders: list[Order]
    fills: list[Fill]
    curve: Curve
    events: int
    first_ns: int | None
    now: int


def _thin(count: int) -> list[int]:
    if count <= MAX_POINTS:
        return list(range(count))
    step = count / MAX_POINTS
    picked = sorted({int(i * step) for i in range(MAX_POINTS)} | {count - 1})
    return picked


def _fill_json(fill: Fill, units: Units) -> dict[str, Any]:
    instrument = fill.instrument
    return {
        "order_id": fill.order_id,
        "venue": instrument.venue,
        "symbol": instrument.symbol,
        "side": fill.side.value,
        "price": instrument.format_price(fill.price),
        "size": instrument.format_size(fill.size),
        "liquidity": fill.liquidity.value,
        "fee": units.format_cash(instrument.quote, fill.fee),
        "ts_ns": fill.ts_ns,
    }


def build_result(
    run: Run,
    config: BacktestConfig,
    strategy: dict[str, Any],
    data: dict[str, Any],
    elapsed_s: float,
) -> dict[str, Any]:
    units, account, curve = run.units, run.account, run.curve
    picked = _thin(len(curve.ts))
    currencies: dict[str, Any] = {}
    for currency, scale in units.cash_scale.items():
        fills = [f for f in run.fills if f.instrument.quote == currency]
        orders = [o for o in run.orders if o.instrument.quote == currency]
        equity = curve.equity[currency]
        metrics = compute(
            curve.ts,
            equity,
            curve.exposure[currency],
            fills,
            orders,
            account.traded[currency],
            scale,
        )
        for name in ("fees", "maker_fees", "taker_fees"):
            if name in metrics:
                metrics[name] = format_fixed(metrics[name], scale)
        _, _, dd = drawdown(curve.ts, equity)
        currencies[currency] = {
            "cash_scale": scale,
            "initial_cash": format_fixed(account.initial[currency], scale),
            "cash": format_fixed(account.cash[currency], scale),
            "equity": format_fixed(account.equity(currency), scale),
            "metrics": metrics,
            "curve": {
                "equity": [format_fixed(equity[i], scale) for i in picked],
                "drawdown": [round(dd[i], 8) for i in picked],
            },
        }
    instruments = []
    for instrument in run.instruments:
        marks = curve.marks.get(instrument.key, [])
        instruments.append(
            {
                "venue": instrument.venue,
                "symbol": instrument.symbol,
                "quote": instrument.quote,
                "price_scale": instrument.price_scale,
                "size_scale": instrument.size_scale,
                "position": instrument.format_size(account.positions.get(instrument.key, 0)),
                "marks": [
                    format_fixed(marks[i], instrument.price_scale + 1) if marks[i] else None
                    for i in picked
                    if i < len(marks)
                ],
            }
        )
    trips = round_trips(run.fills, units)
    return {
        "version": 1,
        "strategy": strategy,
        "data": {**data, "events": run.events, "first_ns": run.first_ns, "last_ns": run.now},
        "config": {
            "order_latency_ns": config.order_latency_ns,
            "md_latency_ns": config.md_latency_ns,
            "fees": config.fees.describe(),
            "queue": config.queue,
            "partial": config.partial,
            "curve_ns": config.curve_ns,
        },
        "elapsed_s": round(elapsed_s, 3),
        "currencies": currencies,
        "instruments": instruments,
        "curve_ts": [curve.ts[i] for i in picked],
        "trades": [t.as_dict(units) for t in trips[:MAX_TRADES]],
        "trade_count": len(trips),
        "fills": [_fill_json(f, units) for f in run.fills[:MAX_FILLS]],
        "fill_count": len(run.fills),
    }


def new_id(now: dt.datetime | None = None) -> str:
    moment = now or dt.datetime.now(dt.UTC)
    return f"{moment.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(4)}"


class ResultStore:
    """Results under `{root}/backtests/{owner}/`; ids and owners are checked before any path is
    built from them, so a request can never name a file outside."""

    def __init__(self, root: Path) -> None:
        self.root = root / "backtests"

    def _dir(self, owner: str) -> Path:
        if not _OWNER.match(owner):
            raise StorageError(f"bad result owner {owner[:40]!r}")
        return self.root / owner

    def save(self, owner: str, result: dict[str, Any]) -> str:
        directory = self._dir(owner)
        directory.mkdir(parents=True, exist_ok=True)
        result_id = result.get("id") or new_id()
        result = {**result, "id": result_id, "owner": owner}
        result.setdefault("created", dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
        path = directory / f"{result_id}.json"
        temp = directory / f".{result_id}.json.tmp"
        try:
            temp.write_bytes(orjson.dumps(result))
            os.replace(temp, path)
        except OSError as exc:
            raise StorageError(f"cannot save the result: {exc}") from None
        return str(result_id)

    def ids(self, owner: str) -> list[str]:
        directory = self._dir(owner)
        if not directory.is_dir():
            return []
        names = [p.name.removesuffix(".json") for p in directory.glob("*.json")]
        return sorted((n for n in names if _ID.match(n)), reverse=True)

    def get(self, owner: str, result_id: str) -> dict[str, Any] | None:
        if not _ID.match(result_id):
            return None
        path = self._dir(owner) / f"{result_id}.json"
        try:
            data: dict[str, Any] = orjson.loads(path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, orjson.JSONDecodeError) as exc:
            raise StorageError(f"cannot read result {result_id}: {exc}") from None
        return data

    def summaries(self, owner: str, limit: int = 100) -> list[dict[str, Any]]:
        out = []
        for result_id in self.ids(owner)[:limit]:
            result = self.get(owner, result_id)
            if result is not None:
                out.append(summary(result))
        return out


def summary(result: dict[str, Any]) -> dict[str, Any]:
    """The list view of a result: who, what, when, and the headline metrics."""
    headline: dict[str, Any] = {}
    for currency, block in result.get("currencies", {}).items():
        metrics = block.get("metrics", {})
        headline[currency] = {
            "equity": block.get("equity"),
            "total_return": metrics.get("total_return"),
            "sharpe": metrics.get("sharpe"),
            "max_drawdown": metrics.get("max_drawdown"),
        }
    return {
        "id": result.get("id"),
        "created": result.get("created"),
        "strategy": result.get("strategy", {}),
        "data": result.get("data", {}),
        "trade_count": result.get("trade_count"),
        "headline": headline,
    }
