"""Looped recorded frames for bench_feeds.py and cryptofeed_runner.py (stdlib only: both venvs).

Binance depth diffs are renumbered per loop (U/u shifted) so update-id checks stay on the normal
path. Coinbase Exchange l2updates can also be rewritten as Advanced Trade `l2_data` frames with the
same levels (`advanced_frames`), for a feed library that only speaks Advanced Trade.
"""

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

IDS = re.compile(rb'"U":(\d+),"u":(\d+)')


def _shifter(shift: int) -> Callable[[re.Match[bytes]], bytes]:
    def renumber(match: re.Match[bytes]) -> bytes:
        return b'"U":%d,"u":%d' % (int(match[1]) + shift, int(match[2]) + shift)

    return renumber


def binance_frames(samples: Path, loops: int) -> tuple[bytes, list[bytes]]:
    rows = (samples / "binance_depth.jsonl").read_bytes().splitlines()
    second = IDS.search(rows[1])
    last = IDS.search(rows[-1])
    assert second is not None and last is not None
    span = int(last[2]) - int(second[1]) + 1  # loops after the first skip row 0
    out: list[bytes] = []
    for loop in range(loops):
        shift = loop * span
        for row in rows[1:] if loop else rows:
            out.append(IDS.sub(_shifter(shift), row))
    return (samples / "binance_depth_snapshot.jsonl").read_bytes(), out


def coinbase_frames(samples: Path, loops: int) -> tuple[bytes, list[bytes]]:
    rows = (samples / "coinbase_exchange_level2.jsonl").read_bytes().splitlines()
    return rows[1], [row for _ in range(loops) for row in rows[2:]]


def _envelope(seq: int, event: dict[str, Any], ts: str) -> bytes:
    body = {"channel": "l2_data", "client_id": "", "timestamp": ts, "sequence_num": seq}
    body["events"] = [event]
    return json.dumps(body, separators=(",", ":")).encode()


def advanced_frames(samples: Path, loops: int) -> tuple[bytes, list[bytes]]:
    snapshot, frames = coinbase_frames(samples, 1)
    snap = json.loads(snapshot)
    ts = "2021-04-17T16:43:37.078325Z"
    updates = [
        {"side": side, "event_time": ts, "price_level": p, "new_quantity": q}
        for side, rows in (("bid", snap["bids"]), ("offer", snap["asks"]))
        for p, q in rows
    ]
    first = {"type": "snapshot", "product_id": "SKL-GBP", "updates": updates}
    converted = []
    for raw in frames:
        msg = json.loads(raw)
        rows = [
            {
                "side": "bid" if s == "buy" else "offer",
                "event_time": msg["time"],
                "price_level": p,
                "new_quantity": q,
            }
            for s, p, q in msg["changes"]
        ]
        converted.append(
            ({"type": "update", "product_id": "SKL-GBP", "updates": rows}, msg["time"])
        )
    out = [
        _envelope(1 + loop * len(converted) + i, event, when)
        for loop in range(loops)
        for i, (event, when) in enumerate(converted)
    ]
    return _envelope(0, first, ts), out
