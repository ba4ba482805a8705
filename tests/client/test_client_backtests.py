"""Saved backtest results through the client: the list and one result as DataFrames, exact
money, the caller's own results only, and the tier rule."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from client_server import Closed, closed_serving
from quantsaas.backtest import Backtest, BacktestConfig, Fees
from quantsaas.backtest.results import ResultStore, build_result
from quantsaas.backtest.sources import sim_events, sim_instruments
from quantsaas.backtest.strategy import Strategy
from quantsaas.client import AsyncClient, NotFound, TierRequired

T0 = 1_704_067_200_000_000_000


class Trader(Strategy):
    """Buys when flat and sells when long: many round trips on the simulator's trades."""

    def on_trade(self, trade):  # type: ignore[no-untyped-def]
        if self.open_orders():
            return
        if self.position(trade.instrument):
            self.sell(trade.instrument, self.position(trade.instrument))
        else:
            self.buy(trade.instrument, self.size(trade.instrument, "0.01"))


def a_result() -> dict[str, Any]:
    instruments = sim_instruments(["BTC/USD"])
    config = BacktestConfig(fees=Fees.parse("0.001"), curve_ns=10**9)
    run = Backtest(Trader(), instruments, config).run(sim_events(["BTC/USD"], T0, T0 + 30 * 10**9))
    return build_result(run, config, {"name": "Trader", "params": {}}, {"kind": "sim"}, 0.0)


@pytest.fixture(scope="module")
def closed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Closed, list[str]]]:
    with closed_serving(tmp_path_factory.mktemp("client-backtests")) as running:
        store = ResultStore(running.server.directory / "data")
        owner = f"u{running.user_ids['pro']}"
        saved = [store.save(owner, a_result()) for _ in range(2)]
        yield running, saved


@pytest.mark.asyncio
async def test_results_as_dataframes(closed: tuple[Closed, list[str]]) -> None:
    running, saved = closed
    async with AsyncClient(running.server.base, running.keys["pro"]) as client:
        listed = await client.history.backtests()
        result = await client.history.backtest(saved[0])
    document = result.document
    assert sorted(listed["id"]) == sorted(saved)
    assert set(listed["strategy"]) == {"Trader"} and set(listed["currency"]) == {"USD"}
    assert listed["equity"].iloc[0] == Decimal(document["currencies"]["USD"]["equity"])
    assert str(listed["created"].dtype).startswith("datetime64")
    usd = document["currencies"]["USD"]
    assert result.metrics["equity"].iloc[0] == Decimal(usd["equity"])
    assert result.metrics["fills"].iloc[0] == document["fill_count"]
    assert len(result.curve) == len(document["curve_ts"]) > 10
    assert list(result.curve["USD_equity"]) == [Decimal(v) for v in usd["curve"]["equity"]]
    assert len(result.trades) == len(document["trades"]) > 2
    assert list(result.trades["pnl"]) == [Decimal(t["pnl"]) for t in document["trades"]]
    assert [t.value for t in result.trades["entry"]] == [t["entry_ns"] for t in document["trades"]]
    assert len(result.fills) == len(document["fills"]) and set(result.fills["side"]) == {
        "buy",
        "sell",
    }
    assert str(result.fills["price"].dtype).startswith("decimal128")


@pytest.mark.asyncio
async def test_other_users_results_and_tiers(closed: tuple[Closed, list[str]]) -> None:
    running, saved = closed
    async with AsyncClient(running.server.base, running.keys["tiny"]) as client:
        assert len(await client.history.backtests()) == 0  # their own: none
        with pytest.raises(NotFound):  # another user's id is a plain 404
            await client.history.backtest(saved[0])
    async with AsyncClient(running.server.base, running.keys["free"]) as client:
        with pytest.raises(TierRequired):
            await client.history.backtests()
