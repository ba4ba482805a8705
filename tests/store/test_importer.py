"""`quantsaas import`: hand-made files in the published Tardis and Binance layouts become the
trades, books and candles the history store serves; bad rows are reported by file and line."""

from __future__ import annotations

import gzip
import zipfile
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantsaas.backtest.sources import stored_events
from quantsaas.cli import main
from quantsaas.model import BookDelta, BookSnapshot, Instrument, Side, parse_fixed
from quantsaas.store.history import HistoryStore
from quantsaas.store.importer import Report, fixed_column, time_rec
from quantsaas.store.importer_cli import infer_scales
from quantsaas.store.importer_tardis import import_tardis

US = 1_000
T0_US = 1_704_067_200_000_000  # 2024-01-01T00:00:00Z
T0 = T0_US * US


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    code = main(["import", *argv, "--json"])
    out = capsys.readouterr().out
    return code, orjson.loads(out) if out.strip() else {}


def test_tardis_trades_gz_with_bad_rows_reported_by_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [
        "exchange,symbol,timestamp,local_timestamp,id,side,price,amount",
        f"binance,BTCUSDT,{T0_US + 1},{T0_US + 5},101,buy,42000.10,0.500",
        f"binance,BTCUSDT,{T0_US + 2},{T0_US + 6},102,sell,42000.00,1.25",
        f"binance,BTCUSDT,{T0_US + 3},{T0_US + 7},103,unknown,42000.00,1",  # line 4: side
        f"binance,BTCUSDT,{T0_US + 4},{T0_US + 8},104,buy,4.2e4,1",  # line 5: not decimal text
        f"binance,BTCUSDT,{T0_US + 5},{T0_US + 9},105,buy",  # line 6: too few fields
        f"binance,BTCUSDT,{T0_US + 6},{T0_US + 10},106,sell,41999.9,0.001",
        f"binance,BTCUSDT,{T0_US + 7},{T0_US + 11},107,buy,42000.123,1",  # line 8: 3 decimals
        "",  # line 9: an empty line is a bad row too
        f"binance,BTCUSDT,{T0_US + 8},{T0_US + 12},108,buy,42001,2",
    ]
    path = tmp_path / "binance_trades_2024-01-01_BTCUSDT.csv.gz"
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    data = tmp_path / "data"
    code, out = run(
        capsys,
        "tardis",
        "trades",
        str(path),
        "--venue",
        "binance",
        "--symbol",
        "BTC/USDT",
        "--price-scale",
        "2",
        "--size-scale",
        "3",
        "--data-dir",
        str(data),
    )
    assert code == 1  # imported, with bad rows
    (report,) = out["files"]
    assert report["rows"] == 9 and report["bad_rows"] == 5
    assert [b["line"] for b in report["bad"]] == [4, 5, 6, 8, 9]
    assert "side" in report["bad"][0]["reason"] and "fields" in report["bad"][2]["reason"]
    assert "2 decimals" in report["bad"][3]["reason"]
    store = HistoryStore(data)
    instrument = store.instrument("binance", "BTC/USDT")
    assert (instrument.price_scale, instrument.size_scale) == (2, 3)
    trades = store.trades(instrument, T0, T0 + 60 * 10**9).trades
    assert [(t.trade_id, t.price, t.size, t.side) for t in trades] == [
        ("101", 4200010, 500, Side.BUY),
        ("102", 4200000, 1250, Side.SELL),
        ("106", 4199990, 1, Side.SELL),
        ("108", 4200100, 2000, Side.BUY),
    ]
    assert trades[0].ts_event == (T0_US + 1) * US and trades[0].ts_recv == (T0_US + 5) * US
    # importing the same file again replaces it: nothing doubles
    code, _ = run(
        capsys,
        "tardis",
        "trades",
        str(path),
        "--venue",
        "binance",
        "--symbol",
        "BTC/USDT",
        "--data-dir",
        str(data),
    )
    assert code == 1
    assert len(store.trades(instrument, T0, T0 + 60 * 10**9).trades) == 4


def test_tardis_incremental_book_and_snapshots(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    head = "exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount"
    t = T0_US
    rows = [
        head,
        f"x,ETHUSD,{t},{t + 1},true,ask,3001.0,2",  # a snapshot: three rows, one message
        f"x,ETHUSD,{t},{t + 1},true,bid,3000.0,1",
        f"x,ETHUSD,{t},{t + 1},true,bid,2999.5,4",
        f"x,ETHUSD,{t + 10},{t + 11},false,bid,3000.0,0",  # one delta message: two rows
        f"x,ETHUSD,{t + 10},{t + 11},false,ask,3000.5,3",
        f"x,ETHUSD,{t + 20},{t + 21},false,bid,2999.5,x",  # line 7: its message is dropped
        f"x,ETHUSD,{t + 30},{t + 31},false,bid,2999.0,6",
    ]
    book = tmp_path / "incremental.csv"
    book.write_text("\n".join(rows) + "\n")
    quotes = tmp_path / "quotes.csv"
    quotes.write_text(
        "exchange,symbol,timestamp,local_timestamp,ask_amount,ask_price,bid_price,bid_amount\n"
        f"x,ETHUSD,{t + 40},{t + 41},5,3002.0,3001.5,7\n"
    )
    depth = 25
    names = ["exchange", "symbol", "timestamp", "local_timestamp"]
    for level in range(depth):
        names += [f"asks[{level}].price", f"asks[{level}].amount"]
        names += [f"bids[{level}].price", f"bids[{level}].amount"]
    values = ["x", "ETHUSD", str(t + 50), str(t + 51), "3003.0", "1", "3002.5", "2"]
    values += ["3004.0", "3", "", ""] + [""] * (len(names) - 12)
    snapshot = tmp_path / "snap25.csv"
    snapshot.write_text(",".join(names) + "\n" + ",".join(values) + "\n")
    data = tmp_path / "data"
    common = ["--venue", "x", "--symbol", "ETH/USD", "--data-dir", str(data)]
    code, out = run(capsys, "tardis", "incremental_book_L2", str(book), *common)
    assert code == 1 and [b["line"] for b in out["files"][0]["bad"]] == [7]
    assert (out["price_scale"], out["size_scale"]) == (1, 0)  # inferred from the file
    assert run(capsys, "tardis", "quotes", str(quotes), *common)[0] == 0
    assert run(capsys, "tardis", "book_snapshot_25", str(snapshot), *common)[0] == 0
    store = HistoryStore(data)
    instrument = store.instrument("x", "ETH/USD")
    after_delta = store.book_at(instrument, (t + 35) * US)
    assert after_delta.bids == ((29995, 4), (29990, 6))
    assert after_delta.asks == ((30005, 3), (30010, 2))
    assert store.book_at(instrument, (t + 45) * US).bids == ((30015, 7),)
    last = store.book_at(instrument, (t + 55) * US)
    assert last.bids == ((30025, 2),) and last.asks == ((30030, 1), (30040, 3))
    events = list(stored_events(store, [instrument], T0, T0 + 10**9))
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["BookSnapshot", "BookDelta", "BookDelta", "BookSnapshot", "BookSnapshot"]
    first = events[0]
    assert isinstance(first, BookSnapshot) and first.ts_recv == (t + 1) * US
    assert isinstance(events[1], BookDelta) and events[1].asks == ((30005, 3),)


def test_binance_trades_aggtrades_and_zipped_klines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ms = T0 // 10**6
    trades = tmp_path / "BTCUSDT-trades-2024-01-01.csv"  # older file: no header, milliseconds
    trades.write_text(
        f"1,42000.01000000,0.00100000,42.00001,{ms},true,true\n"
        f"2,42000.02000000,0.00200000,84.00004,{ms + 1},false,true\n"
        f"3,42000.03000000,0.00300000,126.00009,{ms + 2},maybe,true\n"
    )
    agg = tmp_path / "BTCUSDT-aggTrades-2025-01-01.csv"  # newer file: header, microseconds
    us = 1_735_689_600_000_000
    agg.write_text(
        "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,"
        "is_buyer_maker,is_best_match\n"
        f"7,93000.10,0.5,10,12,{us},false,true\n"
    )
    kline_rows = []
    for minute in range(3):
        open_ms = ms + minute * 60_000
        o, c = 42000 + minute, 42001 + minute
        kline_rows.append(
            f"{open_ms},{o}.00,{c + 5}.00,{o - 5}.00,{c}.00,1.50000000,{open_ms + 59_999},"
            f"63000.00000000,10,0.70000000,29400.00000000,0"
        )
    kline_rows.append(f"{ms + 180_000},1,2,3")  # line 4: 4 fields
    zipped = tmp_path / "BTCUSDT-1m-2024-01-01.zip"
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("BTCUSDT-1m-2024-01-01.csv", "\n".join(kline_rows) + "\n")
    data = tmp_path / "data"
    common = ["--venue", "binance", "--symbol", "BTC/USDT", "--data-dir", str(data)]
    code, out = run(capsys, "binance", "trades", str(trades), *common)
    assert code == 1 and [(b["line"], b["reason"]) for b in out["files"][0]["bad"]] == [
        (3, "is_buyer_maker is not true or false")
    ]
    assert (out["price_scale"], out["size_scale"]) == (2, 3)
    assert run(capsys, "binance", "aggTrades", str(agg), *common)[0] == 0
    code, out = run(capsys, "binance", "klines", str(zipped), *common)
    assert code == 1 and out["files"][0]["bad"][0]["line"] == 4
    store = HistoryStore(data)
    instrument = store.instrument("binance", "BTC/USDT")
    got = store.trades(instrument, T0, T0 + 10**9).trades
    assert [(t.price, t.size, t.side, t.ts_event) for t in got] == [
        (4200001, 1, Side.SELL, T0),  # the buyer was the maker: the taker sold
        (4200002, 2, Side.BUY, T0 + 10**6),
    ]
    (newer,) = store.trades(instrument, us * 1000, us * 1000 + 10**9).trades
    assert newer.ts_event == us * 1000 and newer.price == 9300010 and newer.side is Side.BUY
    minute = 60 * 10**9
    candles = store.candles(instrument, "1m", T0 + 10**9, T0 + 3 * minute, T0 + 3 * minute)
    # the first minute's klines row and the two trades meet in one candle at T0; later ones
    # are the klines alone
    assert [c.start_ns for c in candles] == [T0 + minute, T0 + 2 * minute]
    assert [(c.open, c.close, c.volume, c.trades) for c in candles] == [
        (4200100, 4200200, 1500, 10),
        (4200200, 4200300, 1500, 10),
    ]


def test_exact_decimal_columns_and_recording_order() -> None:
    values, ok = fixed_column(pa.array(["1.50", "0.005", "12", "1.2345", "-1", "", "1e3"]), 3)
    assert values.tolist()[:3] == [1500, 5, 12000] and ok.tolist() == [
        True,
        True,
        True,
        False,
        False,
        False,
        False,
    ]
    digits = "9" * 19
    assert not fixed_column(pa.array([digits]), 0)[1][0]  # beyond int64: refused, not wrapped
    assert time_rec(np.array([5000, 5000, 6000])).tolist() == [5000, 5001, 6000]


def test_scales_inferred_and_unreadable_input(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(
        "exchange,symbol,timestamp,local_timestamp,id,side,price,amount\n"
        f"x,Y,{T0_US},{T0_US},1,buy,10.250,0.00010\n"
    )
    assert infer_scales("tardis", "trades", path) == (2, 4)
    broken = tmp_path / "t.csv.gz"
    broken.write_bytes(b"not gzip at all")
    instrument = Instrument("x", "Y", "USD", "YUSD", 2, 4, 1, 1)
    report = Report(str(broken))
    import_tardis(broken, "trades", instrument, tmp_path, report)
    assert report.bad == 1 and report.details[0][0] == 1
    assert "unreadable" in report.details[0][1]


def test_wrong_layout_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "t.csv"
    path.write_text("a,b,c\n1,2,3\n")
    code = main(
        [
            "import",
            "tardis",
            "trades",
            str(path),
            "--venue",
            "x",
            "--symbol",
            "A/B",
            "--price-scale",
            "1",
            "--size-scale",
            "1",
            "--data-dir",
            str(tmp_path),
        ]
    )
    assert code == 2
    assert "header is not the expected layout" in capsys.readouterr().err


@settings(max_examples=300, deadline=None)
@given(
    texts=st.lists(
        st.one_of(
            st.from_regex(r"\A[0-9]{0,20}(\.[0-9]{0,12})?\Z"),
            st.text(alphabet="0123456789.-+eE x", max_size=12),
        ),
        min_size=1,
        max_size=40,
    ),
    scale=st.integers(min_value=0, max_value=10),
    skip=st.integers(min_value=0, max_value=3),
)
def test_vectorised_decimals_agree_with_parse_fixed(
    texts: list[str], scale: int, skip: int
) -> None:
    """Exactly `model.parse_fixed` on plain decimal text, within int64; everything else
    refused (signs, exponents, spaces, more than 18 digits)."""
    column = pa.array(["pad"] * skip + texts).slice(skip)
    values, ok = fixed_column(column, scale)
    for text, value, good in zip(texts, values.tolist(), ok.tolist(), strict=True):
        plain = all(c in "0123456789." for c in text) and text.count(".") <= 1
        try:
            expected: int | None = parse_fixed(text, scale)
        except ValueError:
            expected = None
        if good:
            assert expected == value, (text, scale)
        else:
            assert (
                not plain
                or expected is None
                or expected >= 10**18
                or sum(c.isdigit() for c in text) > 18  # digits are bounded before converting
                or not any(c.isdigit() for c in text)
            ), (text, scale)
