"""Tardis downloadable CSV (../shared/research/data_formats.md): trades, incremental_book_L2,
book_snapshot_25 (or _5) and quotes, into the recorder's trades and book tables.

Every file starts with `exchange, symbol, timestamp, local_timestamp` (microseconds since the
epoch: exchange time -> `ts_event`, receive time -> `ts_recv`) and has a header row. Rules:
* `trades`: `id, side, price, amount`; `side` is the taker's, `unknown` is refused (our model
  needs an aggressor; the row is reported).
* `incremental_book_L2`: `is_snapshot, side, price, amount`; a run of `is_snapshot=true`
  rows is one snapshot message (a new book), other rows sharing a `local_timestamp` are one
  delta message; amount 0 deletes the level. A bad row drops its whole message (a partial
  message would corrupt the book), reported with the bad row's line.
* `book_snapshot_N`: each row is one snapshot message of up to N levels per side (empty
  fields past the last level).
* `quotes`: each row is a one-level snapshot (best bid and ask).
"""

from __future__ import annotations

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
    time_column,
    time_rec,
)
from quantsaas.store.layout import (
    ASK,
    BID,
    BOOK,
    BOOK_DELTA,
    BOOK_SCHEMA,
    BOOK_SNAPSHOT,
    SIDE_BUY,
    SIDE_SELL,
    TRADE_SCHEMA,
    TRADES,
)

US = 1000
COMMON = ["exchange", "symbol", "timestamp", "local_timestamp"]
TYPES = ("trades", "incremental_book_L2", "book_snapshot_25", "book_snapshot_5", "quotes")


def columns_of(data_type: str) -> list[str]:
    if data_type == "trades":
        return [*COMMON, "id", "side", "price", "amount"]
    if data_type == "incremental_book_L2":
        return [*COMMON, "is_snapshot", "side", "price", "amount"]
    if data_type == "quotes":
        return [*COMMON, "ask_amount", "ask_price", "bid_price", "bid_amount"]
    if data_type.startswith("book_snapshot_"):
        depth = int(data_type.rsplit("_", 1)[1])
        names = list(COMMON)  # asks[0], bids[0], asks[1], bids[1], ...
        for level in range(depth):
            for side in ("asks", "bids"):
                names += [f"{side}[{level}].price", f"{side}[{level}].amount"]
        return names
    raise ConfigError(f"unknown Tardis data type {data_type!r}; one of {', '.join(TYPES)}")


def import_tardis(
    path: Path, data_type: str, instrument: Instrument, root: Path, report: Report
) -> None:
    reader = CsvReader(path, columns_of(data_type), header=True, report=report)
    writer = Writer(root, instrument, path, report)
    if data_type == "trades":
        _trades(reader, writer, instrument)
    elif data_type == "incremental_book_L2":
        _incremental(reader, writer, instrument)
    elif data_type == "quotes":
        _levels(
            reader, writer, instrument, [("bid_price", "bid_amount")], [("ask_price", "ask_amount")]
        )
    else:
        depth = int(data_type.rsplit("_", 1)[1])
        bids = [(f"bids[{i}].price", f"bids[{i}].amount") for i in range(depth)]
        asks = [(f"asks[{i}].price", f"asks[{i}].amount") for i in range(depth)]
        _levels(reader, writer, instrument, bids, asks)
    writer.close()


def _is(column: pa.Array, word: str) -> np.ndarray:
    """Case-insensitive equality with `word`, as a NumPy bool array."""
    same = pc.equal(column, word)
    if not pc.all(same).as_py():
        same = pc.or_(same, pc.equal(pc.utf8_lower(column), word))
    return np.asarray(same.to_numpy(zero_copy_only=False), dtype=bool)


def _times(batch: pa.RecordBatch) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    ts_event, ok_e = time_column(batch.column("timestamp"), US)
    ts_recv, ok_r = time_column(batch.column("local_timestamp"), US)
    return ts_event, ok_e, ts_recv, ok_r


def _trades(reader: CsvReader, writer: Writer, instrument: Instrument) -> None:
    for batch, start in reader.batches():
        ts_event, ok_e, ts_recv, ok_r = _times(batch)
        price, ok_p = fixed_column(batch.column("price"), instrument.price_scale)
        size, ok_s = fixed_column(batch.column("amount"), instrument.size_scale)
        side_text = batch.column("side")
        side = np.where(
            _is(side_text, "buy"), SIDE_BUY, np.where(_is(side_text, "sell"), SIDE_SELL, 0)
        )
        ok_side = side != 0
        positive = (price > 0) & (size > 0)
        reasons = [
            (ok_e, "bad timestamp"),
            (ok_r, "bad local_timestamp"),
            (ok_p, f"price is not exact decimal text at {instrument.price_scale} decimals"),
            (ok_s, f"amount is not exact decimal text at {instrument.size_scale} decimals"),
            (ok_side, "side is not buy or sell"),
            (positive, "price and amount must be positive"),
        ]
        ok = ok_e & ok_r & ok_p & ok_s & ok_side & positive
        bad_rows(reader, start, ok, reasons)
        keep = pa.array(ok)
        table = pa.Table.from_arrays(
            [
                pa.array(ts_event, pa.int64()),
                pa.array(ts_recv, pa.int64()),
                pa.array(time_rec(ts_recv), pa.int64()),
                pa.array(price, pa.int64()),
                pa.array(size, pa.int64()),
                pa.array(side, pa.int8()),
                batch.column("id"),
            ],
            schema=TRADE_SCHEMA,
        ).filter(keep)
        writer.add(TRADES, table)


def _incremental(reader: CsvReader, writer: Writer, instrument: Instrument) -> None:
    carry: pa.Table | None = None
    message_seq = 0
    for batch, start in reader.batches():
        ts_event, ok_e, ts_recv, ok_r = _times(batch)
        price, ok_p = fixed_column(batch.column("price"), instrument.price_scale)
        size, ok_s = fixed_column(batch.column("amount"), instrument.size_scale)
        side_text = batch.column("side")
        side = np.where(_is(side_text, "bid"), BID, np.where(_is(side_text, "ask"), ASK, -1))
        snapshot = _is(batch.column("is_snapshot"), "true")
        ok_snap = snapshot | _is(batch.column("is_snapshot"), "false")
        ok_side = side >= 0
        positive = price > 0
        reasons = [
            (ok_e, "bad timestamp"),
            (ok_r, "bad local_timestamp"),
            (ok_snap, "is_snapshot is not true or false"),
            (ok_side, "side is not bid or ask"),
            (ok_p, f"price is not exact decimal text at {instrument.price_scale} decimals"),
            (ok_s, f"amount is not exact decimal text at {instrument.size_scale} decimals"),
            (positive, "price must be positive"),
        ]
        ok = ok_e & ok_r & ok_snap & ok_side & ok_p & ok_s & positive
        bad_rows(reader, start, ok, reasons)
        # message boundaries: a snapshot run is one message; otherwise one per local_timestamp
        previous_snap = np.concatenate([[False], snapshot[:-1]])
        previous_ts = np.concatenate([[-1], ts_recv[:-1]])
        starts = (snapshot & ~previous_snap) | (
            ~snapshot & ((ts_recv != previous_ts) | previous_snap)
        )
        message = np.cumsum(starts) - 1 + message_seq
        bad_messages = np.unique(message[~ok])
        keep = ok & ~np.isin(message, bad_messages)
        table = pa.table(
            {
                "message": pa.array(message, pa.int64()),
                "ts_event": pa.array(ts_event, pa.int64()),
                "ts_recv": pa.array(ts_recv, pa.int64()),
                "kind": pa.array(np.where(snapshot, BOOK_SNAPSHOT, BOOK_DELTA), pa.int8()),
                "side": pa.array(side.astype(np.int8), pa.int8()),
                "price": pa.array(price, pa.int64()),
                "size": pa.array(size, pa.int64()),
            }
        ).filter(pa.array(keep))
        message_seq = int(message[-1]) + 1 if len(message) else message_seq
        if carry is not None:
            table = pa.concat_tables([carry, table])
        # the last message may continue in the next block: hold it back
        if table.num_rows:
            last = table.column("message")[-1].as_py()
            held = pc.equal(table.column("message"), last)
            carry = table.filter(held)
            table = table.filter(pc.invert(held))
        writer.add(BOOK, _book_rows(table))
    if carry is not None:
        writer.add(BOOK, _book_rows(carry))


def _book_rows(table: pa.Table) -> pa.Table:
    """Rows of whole messages -> BOOK_SCHEMA: one rec and seq per message (its first row's
    receive time, ranked among messages with the same time)."""
    if not table.num_rows:
        return BOOK_SCHEMA.empty_table()
    message = table.column("message").to_numpy()
    first = np.concatenate([[True], message[1:] != message[:-1]])
    index = np.flatnonzero(first)
    counts = np.diff(np.concatenate([index, [len(message)]]))
    first_recv = table.column("ts_recv").to_numpy()[index]
    recs = np.repeat(time_rec(first_recv), counts)
    seq = np.repeat(message[index], counts)
    kinds = table.column("kind").to_numpy()
    kind = np.repeat(kinds[index], counts)
    ts_event = np.repeat(table.column("ts_event").to_numpy()[index], counts)
    ts_recv = np.repeat(first_recv, counts)
    return pa.Table.from_arrays(
        [
            pa.array(ts_event, pa.int64()),
            pa.array(ts_recv, pa.int64()),
            pa.array(recs, pa.int64()),
            pa.array(seq, pa.int64()),
            pa.array(kind, pa.int8()),
            table.column("side"),
            table.column("price"),
            table.column("size"),
        ],
        schema=BOOK_SCHEMA,
    )


def _levels(
    reader: CsvReader,
    writer: Writer,
    instrument: Instrument,
    bids: list[tuple[str, str]],
    asks: list[tuple[str, str]],
) -> None:
    """One snapshot message per row, from (price, amount) column pairs per side."""
    message_seq = 0
    for batch, start in reader.batches():
        ts_event, ok_e, ts_recv, ok_r = _times(batch)
        ok = ok_e & ok_r
        reasons = [(ok_e, "bad timestamp"), (ok_r, "bad local_timestamp")]
        columns: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]] = []
        for side, pairs in ((BID, bids), (ASK, asks)):
            for price_name, amount_name in pairs:
                price_text, size_text = batch.column(price_name), batch.column(amount_name)
                empty = pc.and_(pc.equal(price_text, ""), pc.equal(size_text, "")).to_numpy(
                    zero_copy_only=False
                )
                price, ok_p = fixed_column(price_text, instrument.price_scale)
                size, ok_s = fixed_column(size_text, instrument.size_scale)
                good = empty | (ok_p & ok_s & (price > 0) & (size > 0))
                reasons.append((good, f"bad level {price_name}/{amount_name}"))
                ok = ok & good
                columns.append((side, price, size, ~empty))
        bad_rows(reader, start, ok, reasons)
        n = len(ok)
        message = np.arange(n) + message_seq
        message_seq += n
        parts = []
        for side, price, size, present in columns:
            mask = present & ok
            parts.append(
                (
                    message[mask],
                    np.full(int(mask.sum()), side),
                    price[mask],
                    size[mask],
                    np.flatnonzero(mask),
                )
            )
        rows_message = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.int64)
        order = np.argsort(rows_message, kind="stable")
        row_index = np.concatenate([p[4] for p in parts])[order]
        table = pa.table(
            {
                "message": pa.array(rows_message[order], pa.int64()),
                "ts_event": pa.array(ts_event[row_index], pa.int64()),
                "ts_recv": pa.array(ts_recv[row_index], pa.int64()),
                "kind": pa.array(np.full(len(order), BOOK_SNAPSHOT), pa.int8()),
                "side": pa.array(
                    np.concatenate([p[1] for p in parts])[order].astype(np.int8), pa.int8()
                ),
                "price": pa.array(np.concatenate([p[2] for p in parts])[order], pa.int64()),
                "size": pa.array(np.concatenate([p[3] for p in parts])[order], pa.int64()),
            }
        )
        writer.add(BOOK, _book_rows(table))
