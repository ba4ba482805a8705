"""`quantsaas tail SYMBOL`: a live stream in the terminal, through the Python client.

Readable lines for a person, `--json` for pipes (one JSON object per line, prices as exact
decimal strings). It uses the client, so it honours the same rules: the key from
QUANTSAAS_API_KEY, reconnects with backoff, a `gap` line wherever the stream lost something, and
one clear error line (exit status 1) for refused credentials, tiers, unknown symbols or a
server that stays gone.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import sys
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, TextIO

import orjson

from quantsaas.client.errors import ClientError
from quantsaas.client.events import Candle, Gap
from quantsaas.model import BookSnapshot, Instrument, Ticker, Trade

if TYPE_CHECKING:
    from quantsaas.client._async import AsyncClient

URL_ENV = "QUANTSAAS_URL"
DEFAULT_URL = "http://127.0.0.1:8000"
"""As `AsyncClient`'s; repeated so `quantsaas serve`, which registers this command, never
loads the client's HTTP stack."""
CHANNELS = ("trades", "book", "ticker", "candles")


def add_commands(commands: Any) -> None:
    tail = commands.add_parser(
        "tail", help="print a live stream of a server (the Python client; key: QUANTSAAS_API_KEY)"
    )
    tail.add_argument("symbol", help="e.g. BTC/USD (or BTC-USD)")
    tail.add_argument("--venue", help="e.g. sim (default: every venue with the symbol)")
    tail.add_argument("--channel", choices=CHANNELS, default="trades")
    tail.add_argument("--json", action="store_true", help="one JSON object per line")
    tail.add_argument(
        "--url", default=os.environ.get(URL_ENV, DEFAULT_URL), help=f"server (${URL_ENV})"
    )
    tail.add_argument("--interval", default="1m", help="candles: 1s, 1m, 5m, 15m, 1h, 4h, 1d")
    tail.add_argument("--depth", type=int, default=5, help="book: levels a side to show")
    tail.add_argument("--count", type=int, help="stop after this many items")
    tail.add_argument(
        "--stall", type=float, default=60.0, help="fail when the stream is silent this long (s)"
    )


def iso(ts_ns: int) -> str:
    moment = dt.datetime.fromtimestamp(ts_ns // 1_000_000 / 1000, tz=dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _levels(instrument: Instrument, levels: tuple[tuple[int, int], ...]) -> list[list[str]]:
    return [[instrument.format_price(p), instrument.format_size(s)] for p, s in levels]


def as_json(item: Any) -> dict[str, Any]:
    """The JSON line for a stream item (the wire's field names, exact decimal strings)."""
    if isinstance(item, Gap):
        return {
            "type": "gap",
            "channel": item.channel,
            "venue": item.venue,
            "symbol": item.symbol,
            "missed": item.missed,
            "reason": item.reason,
        }
    instrument: Instrument = item.instrument
    price, size = instrument.format_price, instrument.format_size
    head = {
        "venue": instrument.venue,
        "symbol": instrument.symbol,
        "datetime": iso(item.ts_event),
        "ts_event": item.ts_event,
        "ts_recv": item.ts_recv,
    }
    if isinstance(item, Trade):
        return {
            "type": "trade",
            **head,
            "id": item.trade_id,
            "price": price(item.price),
            "amount": size(item.size),
            "side": item.side.value,
        }
    if isinstance(item, BookSnapshot):
        return {
            "type": "book",
            **head,
            "nonce": item.sequence,
            "bids": _levels(instrument, item.bids),
            "asks": _levels(instrument, item.asks),
        }
    if isinstance(item, Ticker):
        return {
            "type": "ticker",
            **head,
            "bid": price(item.bid),
            "bidVolume": size(item.bid_size),
            "ask": price(item.ask),
            "askVolume": size(item.ask_size),
            "last": None if item.last is None else price(item.last),
        }
    if isinstance(item, Candle):
        return {
            "type": "candle",
            **head,
            "interval": item.interval,
            "start": iso(item.start_ns),
            "open": price(item.open),
            "high": price(item.high),
            "low": price(item.low),
            "close": price(item.close),
            "volume": size(item.volume),
            "trades": item.trades,
            "closed": item.closed,
        }
    raise TypeError(f"cannot show {type(item).__name__}")


def as_text(item: Any) -> str:
    """A readable line for a stream item."""
    if isinstance(item, Gap):
        lost = "an unknown number of" if item.missed is None else str(item.missed)
        return f"-- gap on {item.channel} {item.venue} {item.symbol}: {lost} lost ({item.reason})"
    instrument: Instrument = item.instrument
    price, size = instrument.format_price, instrument.format_size
    head = f"{iso(item.ts_event)} {instrument.venue} {instrument.symbol}"
    if isinstance(item, Trade):
        return f"{head} {item.side.value:<4} {size(item.size)} @ {price(item.price)}"
    if isinstance(item, BookSnapshot):
        bid = " ".join(f"{size(s)}@{price(p)}" for p, s in item.bids)
        ask = " ".join(f"{size(s)}@{price(p)}" for p, s in item.asks)
        return f"{head} #{item.sequence} bids {bid or '-'} | asks {ask or '-'}"
    if isinstance(item, Ticker):
        last = "-" if item.last is None else price(item.last)
        return (
            f"{head} bid {size(item.bid_size)}@{price(item.bid)} "
            f"ask {size(item.ask_size)}@{price(item.ask)} last {last}"
        )
    if isinstance(item, Candle):
        state = "closed" if item.closed else "open"
        return (
            f"{head} {item.interval} {iso(item.start_ns)} O {price(item.open)} "
            f"H {price(item.high)} L {price(item.low)} C {price(item.close)} "
            f"V {size(item.volume)} ({item.trades} trades, {state})"
        )
    raise TypeError(f"cannot show {type(item).__name__}")


def _stream(client: AsyncClient, args: argparse.Namespace) -> AsyncIterator[Any]:
    venue = args.venue
    if args.channel == "book":
        return client.book(args.symbol, venue, depth=max(1, args.depth))
    if args.channel == "ticker":
        return client.ticker(args.symbol, venue)
    if args.channel == "candles":
        return client.candles(args.symbol, venue, interval=args.interval)
    return client.trades(args.symbol, venue)


async def tail(args: argparse.Namespace, out: TextIO) -> None:
    show: Callable[[Any], str] = (
        (lambda item: orjson.dumps(as_json(item)).decode()) if args.json else as_text
    )
    from quantsaas.client._async import AsyncClient

    async with AsyncClient(args.url, stall_s=args.stall if args.stall > 0 else None) as client:
        shown = 0
        stream = _stream(client, args)
        try:
            async for item in stream:
                out.write(show(item) + "\n")
                out.flush()
                shown += 1
                if args.count is not None and shown >= args.count:
                    break
        finally:
            close = getattr(stream, "aclose", None)  # unsubscribe now, not when collected
            if close is not None:
                await close()


def run_tail(args: argparse.Namespace) -> int:
    try:
        asyncio.run(tail(args, sys.stdout))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `quantsaas tail ... | head`: the reader is done, so are we
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # no flush error at exit
        return 0
    except (ClientError, ValueError) as exc:
        print(f"quantsaas tail: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


COMMANDS = {"tail": run_tail}
