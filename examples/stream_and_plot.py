"""Stream a minute of the simulator, then plot its candles and order-flow imbalance.

Start the server first (`bash scripts/run.sh`, which installs the `client` and `examples` extras
too), then:

    .venv/bin/python examples/stream_and_plot.py                 # 60 s, writes sim-minute.png
    .venv/bin/python examples/stream_and_plot.py --seconds 20 --symbol ETH/USD --out eth.png

While the minute runs, the trades and the OFI buckets stream on one WebSocket connection; then
the candles of that minute come from the recorded history (a DataFrame with exact decimal
prices). The server keeps no OFI history, so the OFI panel shows the buckets streamed meanwhile.
A key in QUANTSAAS_API_KEY is sent if set (the demo server needs none).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display needed
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from quantsaas.client import AsyncClient, Gap, Ofi  # noqa: E402


async def watch(client: AsyncClient, symbol: str, seconds: float) -> tuple[int, list[Ofi]]:
    """Count trades and keep OFI buckets for `seconds` (two streams, one connection)."""
    trades = 0
    buckets: list[Ofi] = []

    async def count_trades() -> None:
        nonlocal trades
        async for trade in client.trades(symbol, venue="sim"):
            if isinstance(trade, Gap):
                print(f"gap: {trade.missed} trades lost ({trade.reason})")
            else:
                trades += 1

    async def keep_ofi() -> None:
        async for bucket in client.ofi(symbol, venue="sim"):
            if isinstance(bucket, Ofi):
                buckets.append(bucket)

    jobs = [asyncio.create_task(count_trades()), asyncio.create_task(keep_ofi())]
    started = time.monotonic()
    while (left := started + seconds - time.monotonic()) > 0:
        await asyncio.sleep(min(10.0, left))
        elapsed = time.monotonic() - started
        print(f"{elapsed:4.0f} s: {trades} trades, {len(buckets)} OFI buckets")
        for job in jobs:
            if job.done():
                job.result()  # a stream that failed says why
    for job in jobs:
        job.cancel()
    return trades, buckets


def plot(symbol: str, candles: pd.DataFrame, buckets: list[Ofi], out: str) -> None:
    figure, (top, bottom) = plt.subplots(
        2, 1, figsize=(11, 7), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    if len(candles):
        start = candles["start"].astype("datetime64[ns, UTC]")
        x = mdates.date2num(start.dt.tz_localize(None))
        width = (x[1] - x[0]) * 0.7 if len(x) > 1 else 1 / 86_400
        prices = {name: candles[name].astype(float) for name in ("open", "high", "low", "close")}
        rising = prices["close"] >= prices["open"]
        colours = ["#26a69a" if up else "#ef5350" for up in rising]
        top.vlines(x, prices["low"], prices["high"], colors=colours, linewidth=1)
        bodies = (prices["close"] - prices["open"]).abs().clip(lower=1e-9)
        lower = pd.concat([prices["open"], prices["close"]], axis=1).min(axis=1)
        top.bar(x, bodies, width, bottom=lower, color=colours)
    top.set_title(f"{symbol} on the simulator: candles from history, OFI from the stream")
    top.set_ylabel("price")
    if buckets:
        times = [pd.Timestamp(b.start_ns, unit="ns") for b in buckets]
        level1 = [b.normalised[0] or 0.0 for b in buckets]
        bottom.bar(
            mdates.date2num(times),
            level1,
            width=1 / 86_400 * 0.8,
            color=["#26a69a" if v >= 0 else "#ef5350" for v in level1],
        )
    bottom.axhline(0, color="grey", linewidth=0.5)
    bottom.set_ylabel("OFI (level 1, / depth)")
    bottom.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S"))
    figure.tight_layout()
    figure.savefig(out, dpi=110)


async def main(args: argparse.Namespace) -> None:
    async with AsyncClient(args.url) as client:
        start = time.time_ns()
        trades, buckets = await watch(client, args.symbol, args.seconds)
        await asyncio.sleep(1.5)  # the recorder flushes every second
        candles = await client.history.candles(
            args.symbol, start, time.time_ns(), interval=args.interval, venue="sim"
        )
    print(f"{trades} trades streamed, {len(candles)} candles from history")
    print(candles.tail(3).to_string())
    plot(args.symbol, candles, buckets, args.out)
    print(f"saved {args.out}")


def arguments() -> Any:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--symbol", default="BTC/USD")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--interval", default="1s", help="candle interval (1s .. 1d)")
    parser.add_argument("--out", default="sim-minute.png")
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(arguments()))
