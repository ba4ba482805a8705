"""/api/v1/backtests: each user reads their own saved results, under the tier rules."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from quantsaas.backtest import Backtest, BacktestConfig, Fees
from quantsaas.backtest.results import ResultStore, build_result
from quantsaas.backtest.sources import sim_events, sim_instruments
from quantsaas.backtest.strategy import Strategy
from secured import Secured, secured_service

T0 = 1_704_067_200_000_000_000


class Buyer(Strategy):
    def on_trade(self, trade):  # type: ignore[no-untyped-def]
        if not self.position(trade.instrument) and not self.open_orders():
            self.buy(trade.instrument, self.size(trade.instrument, "0.01"))


def a_result() -> dict[str, object]:
    instruments = sim_instruments(["BTC/USD"])
    config = BacktestConfig(fees=Fees.parse("0.001"), curve_ns=10**9)
    run = Backtest(Buyer(), instruments, config).run(sim_events(["BTC/USD"], T0, T0 + 20 * 10**9))
    return build_result(run, config, {"name": "Buyer", "params": {}}, {"kind": "sim"}, 0.0)


@pytest_asyncio.fixture
async def service(tmp_path: Path) -> AsyncIterator[Secured]:
    url = f"sqlite+aiosqlite:///{tmp_path}/accounts.db"
    async with secured_service(tmp_path, url, data_dir=tmp_path) as running:
        yield running


@pytest.mark.asyncio
async def test_users_read_their_own_results_only(service: Secured) -> None:
    pro = await service.user_key("pro@example.com", "pro")
    other = await service.user_key("other@example.com", "pro")
    free = await service.user_key("free@example.com", "free")
    pro_id = (await service.accounts.find_user("pro@example.com")).id
    store = ResultStore(service.settings.data_dir)
    first = store.save(f"u{pro_id}", a_result())
    second = store.save(f"u{pro_id}", a_result())
    async with service.client() as http:
        listed = await http.get("/api/v1/backtests", headers={"X-API-Key": pro})
        assert listed.status_code == 200
        rows = listed.json()["data"]
        assert sorted(row["id"] for row in rows) == sorted([first, second])
        assert rows[0]["strategy"]["name"] == "Buyer" and "USD" in rows[0]["headline"]
        one = await http.get(f"/api/v1/backtests/{first}", headers={"X-API-Key": pro})
        assert one.status_code == 200
        body = one.json()
        assert body["id"] == first and body["fill_count"] >= 1
        assert body["currencies"]["USD"]["metrics"]["fills"] == body["fill_count"]
        # another user: their list is empty and the id is not theirs (404, not 403)
        assert (await http.get("/api/v1/backtests", headers={"X-API-Key": other})).json() == {
            "data": []
        }
        theirs = await http.get(f"/api/v1/backtests/{first}", headers={"X-API-Key": other})
        assert theirs.status_code == 404 and theirs.json()["code"] == "not-found"
        # the free tier does not include backtests; anonymous callers must sign in
        denied = await http.get("/api/v1/backtests", headers={"X-API-Key": free})
        assert denied.status_code == 403 and denied.json()["code"] == "tier-required"
        assert (await http.get("/api/v1/backtests")).status_code == 401
        for bad in ("..%2F..%2Faccounts", "x" * 41, "20240101T000000-zzzzzzzz"):
            answer = await http.get(f"/api/v1/backtests/{bad}", headers={"X-API-Key": pro})
            assert answer.status_code in (404, 422), bad
