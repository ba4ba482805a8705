"""Runs inside cryptofeed's own venv (not ours): times cryptofeed's real message handlers.

Usage: CRYPTOFEED_PYTHON bench/cryptofeed_runner.py SAMPLES_DIR LOOPS  -> one JSON line.
Binance: the recorded `depth@100ms` frames, renumbered per loop exactly as bench_feeds.py does,
through `Binance.message_handler` (json.loads with Decimal, `_check_update_id`, dict book, the
book callback) after its snapshot state is seeded from the recorded REST response (its `_snapshot`
would fetch it over HTTP). Coinbase: cryptofeed 2.4's Coinbase feed speaks Advanced Trade only,
so the recorded Exchange `l2update`s are converted to `l2_data` frames (same levels) and the same
converted frames are timed through our Advanced Trade parser by bench_feeds.py.
Symbols are set offline through `cryptofeed.symbols.Symbols` (no REST symbol fetch).
"""

import asyncio
import json
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import cryptofeed  # type: ignore[import-not-found]  # noqa: E402
from cryptofeed.defines import BINANCE, COINBASE, L2_BOOK  # type: ignore[import-not-found]  # noqa: E402
from cryptofeed.exchanges import Binance, Coinbase  # type: ignore[import-not-found]  # noqa: E402
from cryptofeed.symbols import Symbols  # type: ignore[import-not-found]  # noqa: E402
from cryptofeed.types import OrderBook  # type: ignore[import-not-found]  # noqa: E402

from feed_frames import advanced_frames, binance_frames  # noqa: E402


async def noop(*args: Any, **kwargs: Any) -> None:
    return None


def binance_rate(samples: Path, loops: int) -> float:
    Symbols.set(BINANCE, {"NKN-USDT": "NKNUSDT"}, {"instrument_type": {"NKN-USDT": "spot"}})
    feed = Binance(symbols=["NKN-USDT"], channels=[L2_BOOK], callbacks={L2_BOOK: noop})
    snapshot, frames = binance_frames(samples, loops)
    snap = json.loads(snapshot, parse_float=Decimal)
    std = "NKN-USDT"
    feed.last_update_id[std] = snap["lastUpdateId"]
    feed._l2_book[std] = OrderBook(
        feed.id,
        std,
        max_depth=feed.max_depth,
        bids={Decimal(p): Decimal(q) for p, q in snap["bids"]},
        asks={Decimal(p): Decimal(q) for p, q in snap["asks"]},
    )
    texts = [frame.decode() for frame in frames]
    handler = feed.message_handler

    async def run() -> float:
        began = time.process_time()
        for text in texts:
            await handler(text, None, 0.0)
        return len(texts) / (time.process_time() - began)

    return asyncio.run(run())


def coinbase_rate(samples: Path, loops: int) -> float:
    Symbols.set(COINBASE, {"SKL-GBP": "SKL-GBP"}, {"instrument_type": {"SKL-GBP": "spot"}})
    feed = Coinbase(symbols=["SKL-GBP"], channels=[L2_BOOK], callbacks={L2_BOOK: noop})
    snapshot, frames = advanced_frames(samples, loops)
    texts = [frame.decode() for frame in frames]
    handler = feed.message_handler

    async def run() -> float:
        await handler(snapshot.decode(), None, 0.0)
        began = time.process_time()
        for text in texts:
            await handler(text, None, 0.0)
        return len(texts) / (time.process_time() - began)

    return asyncio.run(run())


def main() -> None:
    samples, loops = Path(sys.argv[1]), int(sys.argv[2])
    repeat = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    notes = []
    result: dict[str, Any] = {
        "version": cryptofeed.__version__ if hasattr(cryptofeed, "__version__") else "?"
    }
    result["binance"] = max(binance_rate(samples, loops) for _ in range(repeat))
    try:
        result["coinbase_advanced"] = max(coinbase_rate(samples, loops) for _ in range(repeat))
    except Exception as exc:  # report, do not hide
        notes.append(f"coinbase: {type(exc).__name__}: {exc}")
    result["notes"] = notes
    print(json.dumps(result))


if __name__ == "__main__":
    main()
