"""Import throughput: rows/s of `quantsaas import tardis trades` on a 10M-row CSV, beside
pyarrow's own CSV reader on the same file.

The file: Tardis `trades` layout (exchange, symbol, timestamp, local_timestamp, id, side,
price, amount), `--rows` rows (default 10,000,000, about 0.8 GB), prices with 2 decimals and
amounts with 8, written once with pyarrow. Measured, each a fresh run over the whole file:

* `ours`: importer_tardis.import_tardis: read as text in 8 MiB blocks (single-threaded, so
  every bad row keeps its line number), exact decimal -> int64, checks, rec, Parquet (zstd)
  files per day into a temporary store: everything `quantsaas import` does;
* `pyarrow read_csv`: `pyarrow.csv.read_csv` with its own type inference (floats, all
  threads), the table in memory and nothing written: the floor of parsing this file;
* `pyarrow read_csv 1 thread`: the same, `use_threads=False`, as ours reads.

Prints rows/s and the same-run ratios ours / pyarrow.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from quantsaas.model import Instrument
from quantsaas.store.importer import Report
from quantsaas.store.importer_tardis import import_tardis

T0_US = 1_704_067_200_000_000


def decimal_text(raw: np.ndarray, scale: int) -> pa.Array:
    text = pc.utf8_lpad(pc.cast(pa.array(raw), pa.string()), scale + 1, "0")
    whole = pc.utf8_slice_codeunits(text, 0, -scale)
    return pc.binary_join_element_wise(whole, pc.utf8_slice_codeunits(text, -scale), ".")


def write_trades(path: Path, rows: int) -> None:
    rng = np.random.default_rng(7)
    chunk = 1_000_000
    schema = pa.schema([(n, pa.string()) for n in NAMES])
    options = pcsv.WriteOptions(quoting_style="none")  # as Tardis writes them
    with pcsv.CSVWriter(path, schema, write_options=options) as writer:
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            ts = T0_US + (np.arange(start, start + n) * 8)  # ~10 M trades a day
            prices = 4_200_000 + np.cumsum(rng.integers(-3, 4, n))
            sizes = rng.integers(1, 50_000_000, n)
            table = pa.table(
                {
                    "exchange": pa.array(["binance"] * n),
                    "symbol": pa.array(["BTCUSDT"] * n),
                    "timestamp": pc.cast(pa.array(ts), pa.string()),
                    "local_timestamp": pc.cast(pa.array(ts + 3), pa.string()),
                    "id": pc.cast(pa.array(np.arange(start, start + n)), pa.string()),
                    "side": pa.array(np.where(rng.random(n) < 0.5, "buy", "sell")),
                    "price": decimal_text(prices, 2),
                    "amount": decimal_text(sizes, 8),
                }
            )
            writer.write_table(table)


NAMES = ["exchange", "symbol", "timestamp", "local_timestamp", "id", "side", "price", "amount"]


def main() -> None:
    cli = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    cli.add_argument("--rows", type=int, default=10_000_000)
    cli.add_argument("--quick", action="store_true")
    args = cli.parse_args()
    if args.quick:
        args.rows = 1_000_000
    instrument = Instrument("binance", "BTC", "USDT", "BTCUSDT", 2, 8, 1, 1)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "binance_trades_BTCUSDT.csv"
        began = time.perf_counter()
        write_trades(path, args.rows)
        size = path.stat().st_size
        took = time.perf_counter() - began
        print(f"{args.rows:,} rows, {size / 1e6:,.0f} MB written in {took:.1f} s")
        results: list[tuple[str, float]] = []
        began = time.perf_counter()
        report = Report(str(path))
        import_tardis(path, "trades", instrument, Path(tmp) / "store", report)
        results.append(("ours (import, exact, Parquet)", time.perf_counter() - began))
        assert report.bad == 0 and report.written.get("trades") == args.rows, report.as_dict()
        for label, threads in (("pyarrow read_csv", True), ("pyarrow read_csv 1 thread", False)):
            began = time.perf_counter()
            table = pcsv.read_csv(path, read_options=pcsv.ReadOptions(use_threads=threads))
            results.append((label, time.perf_counter() - began))
            assert table.num_rows == args.rows
            del table
    print(f"{'reader':32} {'seconds':>8} {'rows/s':>12}")
    for label, seconds in results:
        print(f"{label:32} {seconds:8.2f} {args.rows / seconds:12,.0f}")
    ours = results[0][1]
    for label, seconds in results[1:]:
        print(f"ratio ours / {label} (rows/s): {seconds / ours:.2f}")


if __name__ == "__main__":
    main()
