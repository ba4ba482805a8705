"""Poisoned numbers for the parser tests: any text put in place of any number of a real frame.

`slots(frame)` lists the paths of every number-like value (prices, sizes, ids, times) of a
decoded frame; `inject(frame, path, token)` writes the frame back with `token` (raw JSON text,
so `1e999999`, `NaN`, a 5,000-digit number, `"-3"` or `[]`) in that place. `check_events` asserts
what a parser may return: only values a consumer can store (prices above zero, sizes not below
zero, everything within the raw range).
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from hypothesis import strategies as st

from quantsaas.model import MAX_RAW, BookDelta, BookSnapshot, OptionTicker, Ticker, Trade

PLACEHOLDER = "\x00poison\x00"

TOKENS = [
    "1e999999",
    "-1e999999",
    "1E-999999",
    "9" * 5000,
    "1" + "0" * 400,
    "-3",
    "0",
    "-0.0",
    "NaN",
    "Infinity",
    "-Infinity",
    "null",
    "true",
    "[]",
    "{}",
    '"1e999999"',
    '"NaN"',
    '"Infinity"',
    '"-3"',
    '"0"',
    '"-0.5"',
    '"' + "9" * 5000 + '"',
    '"0.' + "0" * 300 + '1"',
    '""',
    '"1_000"',
    '"١٢٣"',
    '"92233720368.54775808"',
    '"' + "x" * 100_000 + '"',
]

_number_text = st.one_of(
    st.text(max_size=24),
    st.from_regex(r"-?[0-9]{1,25}(\.[0-9]{0,14})?([eE][-+]?[0-9]{1,7})?", fullmatch=True),
)
tokens = st.one_of(
    st.sampled_from(TOKENS),
    _number_text.map(json.dumps),  # any text, as a JSON string
    st.from_regex(r"-?[0-9]{1,30}(\.[0-9]{1,16})?([eE][-+]?[0-9]{1,7})?", fullmatch=True),
)
"""Raw JSON tokens to put where a number was."""


def slots(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Paths of every number, and of every string that reads as a number or a time."""
    if isinstance(node, dict):
        return [p for key, value in node.items() for p in slots(value, (*path, key))]
    if isinstance(node, list):
        return [p for index, value in enumerate(node) for p in slots(value, (*path, index))]
    if isinstance(node, bool) or node is None:
        return []
    if isinstance(node, int | float):
        return [path]
    if isinstance(node, str) and node[:1].isdigit():
        return [path]
    return []


def inject(raw: bytes | str, path: tuple[Any, ...], token: str) -> bytes:
    """`raw` with the value at `path` replaced by the raw JSON `token`."""
    frame = json.loads(raw)
    node = frame
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = PLACEHOLDER
    text = json.dumps(frame, separators=(",", ":"))
    return text.replace(json.dumps(PLACEHOLDER), token, 1).encode()


def decodes(raw: bytes) -> bool:
    """Strict JSON that a fast decoder reads (no NaN, no number beyond a double)?"""
    try:
        orjson.loads(raw)
    except orjson.JSONDecodeError:
        return False
    return True


def check_value(item: Any) -> None:
    """Every price, size and time of a parsed item is one a consumer can store."""
    if isinstance(item, BookSnapshot | BookDelta):
        for price, size in (*item.bids, *item.asks):
            assert 0 < price <= MAX_RAW and 0 <= size <= MAX_RAW, (price, size)
        assert 0 <= item.sequence <= MAX_RAW
    elif isinstance(item, Trade):
        assert 0 < item.price <= MAX_RAW and 0 <= item.size <= MAX_RAW
    elif isinstance(item, Ticker):
        for value in (item.bid, item.bid_size, item.ask, item.ask_size, item.last, item.volume_24h):
            assert value is None or 0 <= value <= MAX_RAW
    elif isinstance(item, OptionTicker):
        assert 0 <= item.mark_price <= MAX_RAW and 0 <= item.open_interest <= MAX_RAW
        for number in (item.mark_iv, item.underlying_price, item.delta, item.vega):
            assert abs(number) < float("inf")
    else:
        return
    assert -MAX_RAW <= item.ts_event <= MAX_RAW and -MAX_RAW <= item.ts_recv <= MAX_RAW
