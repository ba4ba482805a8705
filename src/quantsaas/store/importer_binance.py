"""Binance public data CSV (../shared/research/data_formats.md): trades, aggTrades, klines.

Columns are positional (older files have no header row; a first line that does not start
with a digit is a header and is skipped). Spot and futures files differ by one trailing
column, so the field count of the first row picks the layout. Times are milliseconds before
2025 and microseconds after in spot files: told apart per row by magnitude, never by date.
`is_buyer_maker = true` means the taker sold. Binance files carry no receive time:
`ts_recv = ts_event`.

trades and aggTrades become trade rows (an aggTrade is one row: its aggregate id, price and
total quantity). klines become 1-second-rollup rows (`candles1s`, rollup.py) at their open
time, in one `klines.parquet` per instrument and day (importing klines of another interval for
that day replaces them), so history candle queries at the klines' interval or coarser, and
bar backtests, read them like candles built from trades.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from quantsaas.errors import ConfigError
from quantsaas.model import Instrument
from quantsaas.store.importer import (
    CsvReader,
    Report,
    Writer,
    bad_rows,
    fixed_column,
    open_text,
    time_column,
    time_rec,
    wide_column,
)
from quantsaas.store.layout import SIDE_BUY, SIDE_SELL, TRADE_SCHEMA, TRADES
from quantsaas.store.rollup import ROLLUP

TYPES = ("trades", "aggTrades", "klines")
LAYOUTS: dict[str, dict[int, list[str]]] = {
    "trades": {
        7: ["id", "price", "qty", "quote_qty", "time", "is_buyer_maker", "is_best_match"],
        6: ["id", "price", "qty", "quote_qty", "time", "is_buyer_maker"],
    },
    "aggTrades": {
        8: ["id", "price", "qty", "first_id", "last_id", "time", "is_buyer_maker", "best"],
        7: ["id", "price", "qty", "first_id", "last_id", "time", "is_buyer_maker"],
    },
    "klines": {
        12: [
            "open_time",
            "open",
            "high",
            "low",
            "close",
            "volume",
            "close_time",
            "quote_volume",
            "trades",
            "taker_buy_base",
            "taker_buy_quote",
            "ignore",
        ]
    },
}
KLINES_FILE = "klines.parquet"


def layout_of(path: Path, data_type: str) -> tuple[list[str], bool]:
    if data_type not in LAYOUTS:
        raise ConfigError(f"unknown Binance data type {data_type!r}; one of {', '.join(TYPES)}")
    try:
        with open_text(path) as stream:
            first = stream.readline(65536).decode("utf-8", "replace").strip()
            header = bool(first) and not first[:1].isdigit()
            if header:
                first = stream.readline(65536).decode("utf-8", "replace").strip()
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ConfigError(f"{path.name}: unreadable: {exc}") from None
    if not first:
        return LAYOUTS[data_type][max(LAYOUTS[data_type])], header
    count = len(first.split(","))
    names = LAYOUTS[data_type].get(count)
    if names is None:
        expected = " or ".join(str(n) for n in LAYOUTS[data_type])
        raise ConfigError(
            f"{path.name}: {count} fields in the first row, a Binance {data_type} file has "
            f"{expected}: {first[:100]!r}"
        )
    return names, header


def import_binance(
    path: Path, data_type: str, instrument: Instrument, root: Path, report: Report
) -> None:
    names, header = layout_of(path, data_type)
    reader = CsvReader(path, names, header, report, check=False)
    writer = Writer(root, instrument, path, report)
    if data_type == "klines":
        _klines(reader, writer, instrument)
    else:
        _trades(reader, writer, instrument)
    writer.close()


def _bool(column: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    lower = pc.utf8_lower(column)
    true = np.asarray(pc.equal(lower, "true").to_numpy(zero_copy_only=False), dtype=bool)
    false = np.asarray(pc.equal(lower, "false").to_numpy(zero_copy_only=False), dtype=bool)
    return true, true | false


def _trades(reader: CsvReader, writer: Writer, instrument: Instrument) -> None:
    for batch, start in reader.batches():
        ts, ok_t = time_column(batch.column("time"))
        price, ok_p = fixed_column(batch.column("price"), instrument.price_scale)
        size, ok_s = fixed_column(batch.column("qty"), instrument.size_scale)
        maker, ok_m = _bool(batch.column("is_buyer_maker"))
        ids = batch.column("id")
        ok_id = pc.match_substring_regex(ids, r"^[0-9]{1,20}$").to_numpy(zero_copy_only=False)
        positive = (price > 0) & (size > 0)
        reasons = [
            (ok_id, "id is not an integer"),
            (ok_t, "time is not epoch milliseconds or microseconds"),
            (ok_p, f"price is not exact decimal text at {instrument.price_scale} decimals"),
            (ok_s, f"quantity is not exact decimal text at {instrument.size_scale} decimals"),
            (ok_m, "is_buyer_maker is not true or false"),
            (positive, "price and quantity must be positive"),
        ]
        ok = ok_id & ok_t & ok_p & ok_s & ok_m & positive
        bad_rows(reader, start, ok, reasons)
        side = np.where(maker, SIDE_SELL, SIDE_BUY)
        table = pa.Table.from_arrays(
            [
                pa.array(ts, pa.int64()),
                pa.array(ts, pa.int64()),
                pa.array(time_rec(ts), pa.int64()),
                pa.array(price, pa.int64()),
                pa.array(size, pa.int64()),
                pa.array(side, pa.int8()),
                ids,
            ],
            schema=TRADE_SCHEMA,
        ).filter(pa.array(ok))
        writer.add(TRADES, table)


def _klines(reader: CsvReader, writer: Writer, instrument: Instrument) -> None:
    ps, ss = instrument.price_scale, instrument.size_scale
    for batch, start in reader.batches():
        opened, ok_o = time_column(batch.column("open_time"))
        closed, ok_c = time_column(batch.column("close_time"))
        prices = {}
        reasons = [(ok_o, "bad open_time"), (ok_c, "bad close_time")]
        ok = ok_o & ok_c & (closed > opened)
        reasons.append((closed > opened, "close_time is not after open_time"))
        for name in ("open", "high", "low", "close"):
            values, good = fixed_column(batch.column(name), ps)
            good = good & (values > 0)
            prices[name] = values
            reasons.append((good, f"{name} is not a positive price at {ps} decimals"))
            ok = ok & good
        consistent = (prices["low"] <= np.minimum(prices["open"], prices["close"])) & (
            prices["high"] >= np.maximum(prices["open"], prices["close"])
        )
        reasons.append((consistent, "low/high do not enclose open and close"))
        volume, ok_v = wide_column(batch.column("volume"), ss)
        buy, ok_b = wide_column(batch.column("taker_buy_base"), ss)
        notional, ok_n = wide_column(batch.column("quote_volume"), ps + ss)
        count, ok_k = fixed_column(batch.column("trades"), 0)
        reasons += [
            (ok_v, f"volume is not exact decimal text at {ss} decimals"),
            (ok_b, f"taker buy volume is not exact decimal text at {ss} decimals"),
            (ok_n, f"quote volume is not exact decimal text at {ps + ss} decimals"),
            (ok_k, "number of trades is not an integer"),
        ]
        ok = ok & consistent & ok_v & ok_b & ok_n & ok_k
        bad_rows(reader, start, ok, reasons)
        rec = time_rec(opened)
        table = pa.table(
            {
                "sec": pa.array(opened, pa.int64()),
                "r0": pa.array(rec, pa.int64()),
                "r1": pa.array(rec, pa.int64()),
                "o": pa.array(prices["open"], pa.int64()),
                "h": pa.array(prices["high"], pa.int64()),
                "l": pa.array(prices["low"], pa.int64()),
                "c": pa.array(prices["close"], pa.int64()),
                "v": volume,
                "bv": buy,
                "notional": notional,
                "n": pa.array(count, pa.int64()),
                "te": pa.array(closed, pa.int64()),
                "tr": pa.array(closed, pa.int64()),
            }
        ).filter(pa.array(ok))
        writer.add(ROLLUP, table, ts_column="sec")
    for key in sorted(writer.pending):
        writer.flush_day(key, KLINES_FILE)  # one klines file per day: a re-import replaces it
