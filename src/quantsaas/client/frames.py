"""Arrow tables from the history API -> pandas DataFrames with Arrow-backed, exact columns.

Prices and amounts become Arrow `decimal128(38, scale)` columns built straight from the raw
integers (the 16-byte little-endian two's complement Arrow stores is the raw value itself, sign
extended), so nothing passes through a float; `df.price.astype(float)` when a float is wanted.
Timestamps become `timestamp[ns, UTC]`. Needs pandas (the `client` extra); pyarrow is a
dependency of the package.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from quantsaas.client.errors import ProtocolViolation
from quantsaas.model import scale_of

try:
    import pandas as pd
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "quantsaas.client history needs pandas: pip install 'quantsaas[client]'"
    ) from exc

PRECISION = 38
TIMESTAMP = pa.timestamp("ns", tz="UTC")


def decimals(raw: Any, scale: int) -> pa.Array:
    """int64 raw values at `scale` -> decimal128(38, scale), exactly."""
    array = raw if isinstance(raw, pa.Array | pa.ChunkedArray) else pa.array(raw, pa.int64())
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if array.offset:
        array = pa.concat_arrays([array])  # a copy at offset 0, so the validity bits line up
    values = array.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    words = np.empty((len(values), 2), dtype=np.int64)
    words[:, 0] = values
    words[:, 1] = values >> 63
    nulls = array.null_count
    validity = array.buffers()[0] if nulls else None
    return pa.Array.from_buffers(
        pa.decimal128(PRECISION, scale), len(values), [validity, pa.py_buffer(words)], nulls, 0
    )


def text_decimals(column: Any, scale: int | None = None) -> pa.Array:
    """Decimal text (the JSON/CSV/candle form) -> decimal128 at `scale` (default: the widest
    scale written), exactly."""
    texts = pa.array(column, type=pa.string()) if not isinstance(column, pa.Array) else column
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    if scale is None:
        scale = max((scale_of(t) for t in texts.drop_null().to_pylist()), default=0)
    try:
        return pc.cast(texts, pa.decimal128(PRECISION, scale))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise ProtocolViolation(f"not decimal text at scale {scale}: {exc}") from None


def timestamps(ns: Any) -> pa.Array:
    array = pa.array(ns, type=pa.int64()) if not isinstance(ns, pa.Array | pa.ChunkedArray) else ns
    return pc.cast(array, TIMESTAMP)


def to_pandas(table: pa.Table) -> pd.DataFrame:
    frame: pd.DataFrame = table.to_pandas(types_mapper=pd.ArrowDtype)
    return frame


TRADE_COLUMNS = ("ts_event", "ts_recv", "id", "price", "amount", "side")


def trades_frame(tables: list[pa.Table], price_scale: int, size_scale: int) -> pd.DataFrame:
    """Stored trade rows (raw int64 columns, as the Parquet download has them) -> DataFrame."""
    kept = [t for t in tables if t.num_rows]
    if not kept:
        empty = pa.table(
            {
                "ts_event": pa.array([], TIMESTAMP),
                "ts_recv": pa.array([], TIMESTAMP),
                "id": pa.array([], pa.string()),
                "price": pa.array([], pa.decimal128(PRECISION, price_scale)),
                "amount": pa.array([], pa.decimal128(PRECISION, size_scale)),
                "side": pa.array([], pa.string()),
            }
        )
        return to_pandas(empty)
    table = pa.concat_tables(kept).combine_chunks()
    side = pc.if_else(pc.equal(table["side"], 1), "buy", "sell")
    columns = {
        "ts_event": timestamps(table["ts_event"]),
        "ts_recv": timestamps(table["ts_recv"]),
        "id": table["trade_id"],
        "price": decimals(table["price"], price_scale),
        "amount": decimals(table["size"], size_scale),
        "side": side,
    }
    return to_pandas(pa.table(columns))


CANDLE_PRICES = ("open", "high", "low", "close")
CANDLE_SIZES = ("volume", "buy_volume")


def candles_frame(rows: list[pa.Table]) -> pd.DataFrame:
    """Candle rows (decimal text prices, as the server writes them) -> DataFrame."""
    kept = [t for t in rows if t.num_rows]
    names = ["start", *CANDLE_PRICES, *CANDLE_SIZES, "vwap", "trades", "closed"]
    if not kept:
        return to_pandas(pa.table({name: pa.array([], pa.null()) for name in names}))
    table = pa.concat_tables(kept, promote_options="default").combine_chunks()
    price_scale = max(scale_of(str(table["open"][0].as_py())), 0)
    size_scale = max(scale_of(str(table["volume"][0].as_py())), 0)
    columns: dict[str, Any] = {"start": timestamps(table["start_ns"])}
    for name in CANDLE_PRICES:
        columns[name] = text_decimals(table[name], price_scale)
    for name in CANDLE_SIZES:
        columns[name] = text_decimals(table[name], size_scale)
    columns["vwap"] = pc.cast(table["vwap"], pa.float64())
    columns["trades"] = pc.cast(table["trades"], pa.int64())
    columns["closed"] = pc.cast(table["closed"], pa.bool_())
    return to_pandas(pa.table(columns))


def book_frame(body: dict[str, Any]) -> pd.DataFrame:
    """GET /api/v1/history/book's answer -> one row per level (side, level, price, amount),
    bids best first then asks best first; the book's time and nonce in `df.attrs`."""
    sides: list[str] = []
    levels: list[int] = []
    prices: list[str] = []
    amounts: list[str] = []
    for side in ("bids", "asks"):
        for index, (price, amount) in enumerate(body[side]):
            sides.append(side[:-1])
            levels.append(index)
            prices.append(price)
            amounts.append(amount)
    table = pa.table(
        {
            "side": pa.array(sides, pa.string()),
            "level": pa.array(levels, pa.int64()),
            "price": text_decimals(pa.array(prices, pa.string())),
            "amount": text_decimals(pa.array(amounts, pa.string())),
        }
    )
    frame = to_pandas(table)
    frame.attrs.update(
        {key: body.get(key) for key in ("venue", "symbol", "at", "nonce", "ts_event", "ts_recv")}
    )
    return frame
