"""1-second rollups: candles from rollups of compacted slots plus raw parts equal live ones."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pyarrow.parquet as pq

from helpers import record_simulator
from quantsaas.analytics.candles import Candle, CandleBuilder
from quantsaas.model import Instrument, Trade
from quantsaas.store import maintenance
from quantsaas.store.history import HistoryStore
from quantsaas.store.layout import TRADES, write_atomic
from quantsaas.store.rollup import ROLLUP

NS = 1_000_000_000


def _live(trades: list[Trade], instrument: Instrument, interval: str) -> list[Candle]:
    builder = CandleBuilder(instrument, interval)
    out = [c for t in trades if t.instrument == instrument if (c := builder.on_trade(t))]
    assert builder.current is not None
    return [replace(c, closed=False) for c in [*out, builder.current]]


def _split_parts_into_two_slots(root: Path) -> None:
    """Every trade part becomes two: the first half in the slot before, the rest in its own."""
    for part in list((root / TRADES).rglob("*.part.parquet")):
        table = pq.read_table(part)
        slot, _, rest = part.name.partition("-")
        half = table.num_rows // 2
        write_atomic(table.slice(0, half), part.with_name(f"{int(slot) - 1}-{rest}"))
        write_atomic(table.slice(half), part.with_name(f"{slot}-x{rest}"))
        part.unlink()


def test_rollups_of_compacted_slots_plus_parts_give_the_live_candles(tmp_path: Path) -> None:
    rec = record_simulator(tmp_path, seconds=8)
    _split_parts_into_two_slots(tmp_path)
    slots = {int(p.name.partition("-")[0]) for p in (tmp_path / TRADES).rglob("*.part.parquet")}
    maintenance.compact(tmp_path, current_slot=max(slots))
    rollups = list((tmp_path / ROLLUP).rglob("*.parquet"))
    assert len(rollups) == len(rec.feed.instruments)  # one compacted slot per symbol
    assert list((tmp_path / TRADES).rglob("*.part.parquet"))  # and the other slot still parts
    store = HistoryStore(tmp_path)
    for instrument in rec.feed.instruments:
        end = 2**62 - 2**62 % NS
        for interval in ("1s", "1m"):
            expected = _live(rec.trades, instrument, interval)
            aligned = store.candles(instrument, interval, 0, end, until_ns=0)
            assert [replace(c, closed=False) for c in aligned] == expected
            ragged = store.candles(instrument, interval, 1, end - 1, until_ns=0)  # trades only
            assert [replace(c, closed=False) for c in ragged] == expected
        from_rollups = store.candles(instrument, "7s", 0, end, until_ns=0)
        from_trades = store.candles(instrument, "7s", 1, end - 1, until_ns=0)
        assert from_rollups == from_trades and len(from_rollups) >= 2


def test_a_missing_rollup_is_rebuilt_and_retention_removes_old_ones(tmp_path: Path) -> None:
    record_simulator(tmp_path, seconds=2)
    maintenance.compact(tmp_path, current_slot=2**62)
    rollups = list((tmp_path / ROLLUP).rglob("*.parquet"))
    assert rollups
    rollups[0].unlink()
    maintenance.compact(tmp_path, current_slot=2**62)
    assert rollups[0].exists()
    assert maintenance.apply_retention(tmp_path, 1, 1_704_067_200 * NS + 5 * 86_400 * NS) > 0
    assert not list((tmp_path / ROLLUP).rglob("*.parquet"))
