"""History queries: intervals, times, trade pages, custom candle widths."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpers import record_simulator
from quantsaas.errors import ConfigError, StorageError, UnknownInstrument
from quantsaas.feeds.deribit.parse import option_instrument
from quantsaas.feeds.instruments import coinbase_instruments
from quantsaas.feeds.simulator import select_instruments
from quantsaas.model import BookDelta, BookSnapshot, Side, Trade
from quantsaas.store import maintenance
from quantsaas.store.history import HistoryStore, parse_cursor, parse_interval, parse_time
from quantsaas.store.layout import TRADES
from quantsaas.store.recorder import Recorder, RecorderConfig

NS = 1_000_000_000


def test_parse_interval_accepts_1s_to_1d_only() -> None:
    assert parse_interval("1s") == NS
    assert parse_interval("15s") == 15 * NS
    assert parse_interval("4h") == 4 * 3600 * NS
    assert parse_interval("1d") == 86_400 * NS
    for bad in ("0s", "2d", "1w", "m", "1.5m", ""):
        with pytest.raises(ConfigError):
            parse_interval(bad)


def test_parse_time_iso_and_ns() -> None:
    assert parse_time("1704067200000000000") == 1_704_067_200 * NS
    assert parse_time("2024-01-01T00:00:00Z") == 1_704_067_200 * NS
    assert parse_time("2024-01-01T00:00:01.5") == 1_704_067_201_500_000_000
    with pytest.raises(ConfigError):
        parse_time("yesterday")


@given(st.text(max_size=40))
def test_query_parsers_answer_a_value_or_a_config_error(text: str) -> None:
    """Whatever a client sends ("9³" is a digit string to str.isdigit, not to int) ends in a
    value or ConfigError (a 400), never another exception (a 500)."""
    for parse in (parse_time, parse_cursor, parse_interval):
        try:
            parse(text)
        except ConfigError:
            pass
    for unicode_digits in ("9³", "²_1", "1_²"):
        with pytest.raises(ConfigError):
            parse_cursor(unicode_digits) if "_" in unicode_digits else parse_time(unicode_digits)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[HistoryStore, list[Trade]]:
    root = tmp_path_factory.mktemp("history")
    rec = record_simulator(root, seconds=5)
    return HistoryStore(root), rec.trades


def test_trade_pages_cover_the_range_once(recorded: tuple[HistoryStore, list[Trade]]) -> None:
    store, trades = recorded
    btc = store.instrument("sim", "BTC-USD")
    mine = [t for t in trades if t.instrument == btc]
    start, end = mine[10].ts_event, mine[-10].ts_event
    expected = [t for t in mine if start <= t.ts_event < end]
    got, cursor, pages = [], None, 0
    while True:
        page = store.trades(btc, start, end, limit=97, after=cursor)
        got.extend(page.trades)
        pages += 1
        if page.next_cursor is None:
            break
        cursor = parse_cursor(page.next_cursor)
    assert got == expected and pages == len(expected) // 97 + 1


def test_custom_interval_candles_group_trades_by_epoch_buckets(
    recorded: tuple[HistoryStore, list[Trade]],
) -> None:
    store, trades = recorded
    eth = store.instrument("sim", "ETH/USD")
    mine = [t for t in trades if t.instrument == eth]
    width = 2 * NS
    candles = store.candles(eth, "2s", 0, 2**62, until_ns=2**62)
    groups = [list(g) for _, g in itertools.groupby(mine, key=lambda t: t.ts_event // width)]
    assert [c.trades for c in candles] == [len(g) for g in groups]
    assert [(c.open, c.close) for c in candles] == [(g[0].price, g[-1].price) for g in groups]
    assert [c.volume for c in candles] == [sum(t.size for t in g) for g in groups]
    assert all(c.closed for c in candles)


def test_unknown_instrument_and_missing_book(recorded: tuple[HistoryStore, list[Trade]]) -> None:
    store, _ = recorded
    with pytest.raises(UnknownInstrument):
        store.instrument("sim", "DOGE-USD")
    with pytest.raises(StorageError):
        store.book_at(store.instrument("sim", "BTC/USD"), 10 * NS)
    assert {i.symbol for i in store.instruments()} == {"BTC/USD", "ETH/USD"}


def test_an_empty_snapshot_is_an_empty_book(tmp_path: Path) -> None:
    instrument = select_instruments("ETH/USD")[0]
    recorder = Recorder(RecorderConfig(tmp_path))
    t = 1_704_067_200 * NS
    recorder.on_event(BookSnapshot(instrument, ((1, 2),), ((3, 4),), 1, t, t))
    recorder.on_event(BookSnapshot(instrument, (), (), 2, t + 5, t + 5))
    recorder.on_event(BookDelta(instrument, ((2, 7),), (), 3, t + 9, t + 9))
    recorder.flush()
    store = HistoryStore(tmp_path)
    assert store.book_at(instrument, t + 1).bids == ((1, 2),)
    empty = store.book_at(instrument, t + 5)
    assert (empty.bids, empty.asks, empty.sequence) == ((), (), 2)
    assert store.book_at(instrument, t + 9).bids == ((2, 7),)


def test_a_query_survives_compaction_between_listing_and_reading(tmp_path: Path) -> None:
    rec = record_simulator(tmp_path, seconds=1)
    Recorder(RecorderConfig(tmp_path)).flush()
    store = HistoryStore(tmp_path)
    btc = rec.feed.instruments[0]
    stale = store._files(TRADES, btc, 0, 2**62)
    assert maintenance.compact(tmp_path, current_slot=2**62) > 0
    table = store._query("SELECT count(*) AS n FROM read_parquet($files)", stale)
    assert table.column("n")[0].as_py() == sum(1 for t in rec.trades if t.instrument == btc)


def test_options_and_dashed_products_are_found_by_any_listed_name(tmp_path: Path) -> None:
    """The instrument (its option spec too) comes back from the files' metadata, and every name
    it is listed with finds it (the old rule looked for `BTC/5DEC26/48000/C`)."""
    option = option_instrument("BTC-5DEC26-48000-C")
    (perp,) = coinbase_instruments(["BTC-PERP-INTX"])
    recorder = Recorder(RecorderConfig(tmp_path))
    t = 1_704_067_200 * NS
    for instrument in (option, perp):
        recorder.on_event(BookSnapshot(instrument, ((10, 2),), ((30, 4),), 1, t, t))
        recorder.on_event(Trade(instrument, 30, 1, Side.BUY, "1", t + 1, t + 1))
    recorder.flush()
    store = HistoryStore(tmp_path)
    for name in ("BTC-5DEC26-48000-C", "btc-5dec26-48000-c"):
        assert store.instrument("deribit", name) == option
    for name in ("BTC-PERP-INTX", "BTC/PERP-INTX", "btc-perp-intx"):
        assert store.instrument("coinbase", name) == perp
    assert store.book_at(option, t + 5).asks == ((30, 4),)
    assert [tr.trade_id for tr in store.trades(perp, t, t + 5).trades] == ["1"]
    with pytest.raises(UnknownInstrument):
        store.instrument("deribit", "BTC-PERP-INTX")


def test_a_book_series_is_book_at_every_step(
    recorded: tuple[HistoryStore, list[Trade]],
) -> None:
    """One replay for many instants (a heatmap's history) gives what book_at gives at each."""
    store, trades = recorded
    btc = store.instrument("sim", "BTC/USD")
    start, end = trades[0].ts_event - NS, trades[-1].ts_event
    step = (end - start) // 40 + 1
    series = store.book_series(btc, start, end, step, depth=20)
    instants = [start + k * step for k in range(40) if start + k * step < end]
    known = [t for t in instants if t >= series[0].ts_event]
    assert [b.ts_event for b in series] == known and len(known) >= 30
    for book in series:
        expected = store.book_at(btc, book.ts_event, 20)
        assert (book.bids, book.asks) == (expected.bids, expected.asks)
    assert store.book_series(btc, end, start, step) == []
