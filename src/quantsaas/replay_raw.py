"""`quantsaas replay-raw`: a file of raw venue frames through the real feed handler and engine.

One venue message per line, exactly as received. The file is scanned first for the native
symbols it names (a name that cannot be an instrument is skipped: its frames are then malformed);
the venue's own feed (`BinanceFeed`, `CoinbaseFeed`, `KrakenFeed` with its v1 support,
`DeribitFeed`) is built for them and replayed by `store.replay.RawFeed` into a `replay` runtime,
the path a recorded day takes. Binance books need the REST depth response (`--snapshot`): the
feed applies it once the first diff of the first depth symbol is buffered, as the live feed
would fetch it. Coinbase Exchange or Advanced Trade is told from the frames' shape.

A malformed frame is counted (`malformed`) and skipped, never ends the run; the counters are the
feeds' own `FeedStats`. The result is one JSON-ready dict.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import orjson

from quantsaas import runtime
from quantsaas.config import Settings
from quantsaas.errors import ConfigError, ProtocolError, quote
from quantsaas.feeds.base import BooksStale, EventSink
from quantsaas.feeds.binance.feed import BinanceFeed
from quantsaas.feeds.coinbase.feed import CoinbaseFeed
from quantsaas.feeds.deribit.feed import DeribitFeed
from quantsaas.feeds.deribit.parse import DERIBIT_SCALE, option_instrument
from quantsaas.feeds.instruments import binance_instruments, coinbase_instruments
from quantsaas.feeds.kraken.feed import KrakenFeed
from quantsaas.feeds.kraken.parse import kraken_instruments
from quantsaas.feeds.transport import WsFeed
from quantsaas.model import BookSnapshot, Instrument, MarketEvent
from quantsaas.store.replay import RawFeed

VENUES = ("binance", "coinbase", "kraken", "deribit")
TOP = 10
MAX_SYMBOL = 64
"""A longer "symbol" names no instrument of any venue (a 100 kB one is hostile input)."""
OFFLINE = "ws://offline.invalid"


class FileFeed(RawFeed):
    """The frames of one file (no receive times: the frame number stands in), counted on the
    way to the engine: events by type, and which books went stale without a fresh snapshot."""

    def __init__(self, feed: WsFeed, lines: list[bytes]) -> None:
        super().__init__(feed, Path(), 0, len(lines))
        self.lines = lines
        self.events: collections.Counter[str] = collections.Counter()
        self.snapshotted: set[tuple[str, str]] = set()

    def load(self) -> list[tuple[int, str | bytes]]:
        return list(enumerate(self.lines))

    async def run(self, sink: EventSink) -> None:
        def counting(event: MarketEvent | BooksStale) -> None:
            if isinstance(event, BooksStale):
                self.snapshotted.difference_update(i.key for i in event.instruments)
            else:
                self.events[type(event).__name__] += 1
                if isinstance(event, BookSnapshot):
                    self.snapshotted.add(event.instrument.key)
            sink(event)

        try:
            await super().run(counting)
        finally:
            self.finished.set()


def replay_raw(venue: str, frames: Path, snapshot: Path | None = None) -> dict[str, Any]:
    """Replay `frames` (one raw frame a line) of `venue`; the JSON summary."""
    if venue not in VENUES:
        raise ConfigError(f"replay-raw: unknown venue {quote(venue)}; known: {', '.join(VENUES)}")
    lines = [line for line in frames.read_bytes().splitlines() if line.strip()]
    return replay_lines(venue, lines, snapshot.read_bytes() if snapshot else None)


def replay_lines(venue: str, lines: list[bytes], snapshot: bytes | None = None) -> dict[str, Any]:
    """`replay_frames` on a fresh event loop."""
    return asyncio.run(replay_frames(venue, lines, snapshot))


async def replay_frames(
    venue: str, lines: list[bytes], snapshot: bytes | None = None
) -> dict[str, Any]:
    """Replay non-blank raw frames of `venue` through its feed and a `replay` runtime."""
    replaying = FileFeed(build_feed(venue, lines, snapshot), lines)
    built = runtime.build(Settings(web_dist=None, record=False), "replay", feeds=[replaying])
    task = asyncio.create_task(built.run(), name="replay-raw")
    try:
        await replaying.finished.wait()
    finally:
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
    return summary(built, replaying)


def summary(built: runtime.Runtime, replaying: FileFeed) -> dict[str, Any]:
    engine, stats, raw = built.engine, replaying.feed.stats, replaying.stats
    assert engine is not None
    books = {}
    for key in sorted(replaying.snapshotted, key=lambda k: k[1]):
        book = engine.books[key]
        inst = book.instrument
        books[inst.native_symbol] = {
            "bids": [[inst.format_price(p), inst.format_size(s)] for p, s in book.bids(TOP)],
            "asks": [[inst.format_price(p), inst.format_size(s)] for p, s in book.asks(TOP)],
            "valid": book.valid,
        }
    events = replaying.events + stats.replies
    return {
        "frames": raw.messages,
        "events": dict(sorted(events.items())),
        "gaps": stats.gaps,
        "resyncs": stats.resyncs,
        "checksums_verified": stats.checksums_verified,
        "checksum_failures": stats.checksum_failures,
        "malformed": raw.malformed + stats.malformed,
        "books": dict(sorted(books.items())),
    }


# -- the feed, built for the instruments the file names ----------------------------------------


def build_feed(venue: str, lines: list[bytes], snapshot: bytes | None) -> WsFeed:
    messages = list(_decoded(lines))
    if venue == "binance":
        names = {p["s"] for p in map(_binance_payload, messages) if isinstance(p.get("s"), str)}
        given = [snapshot]

        def once(_: Instrument) -> bytes | None:
            body, given[0] = given[0], None
            return body

        return BinanceFeed(_instruments(names, binance_instruments), OFFLINE, snapshots=once)
    if venue == "coinbase":
        names = set()
        for message in messages:
            names.update(_products(message))
        advanced = any(isinstance(m, dict) and "sequence_num" in m for m in messages)
        instruments = _instruments(names, coinbase_instruments)
        return CoinbaseFeed(instruments, OFFLINE, "advanced" if advanced else "exchange")
    if venue == "kraken":
        names = {name for message in messages for name in _kraken_pairs(message)}
        return KrakenFeed(_instruments(names, kraken_instruments), OFFLINE)
    names = {name for name in map(_deribit_name, messages) if name is not None}
    return DeribitFeed(_instruments(names, _deribit_instruments), OFFLINE)


def _decoded(lines: Iterable[bytes]) -> Iterable[Any]:
    """The frames that are JSON (numbers as text: the scan needs names only)."""
    for line in lines:
        try:
            yield orjson.loads(line)
        except orjson.JSONDecodeError:
            continue


def _instruments(
    names: Iterable[str], build: Callable[[list[str]], tuple[Instrument, ...]]
) -> tuple[Instrument, ...]:
    found: list[Instrument] = []
    for name in sorted(names):
        if len(name) > MAX_SYMBOL:
            continue
        try:
            found.extend(build([name]))
        except (ConfigError, ProtocolError, ValueError):
            continue
    return tuple(found)


def _binance_payload(message: Any) -> dict[str, Any]:
    payload = message.get("data", message) if isinstance(message, dict) else None
    return payload if isinstance(payload, dict) else {}


def _products(message: Any) -> set[str]:
    """Every `product_id` anywhere in a Coinbase frame (iteratively: frames may nest deep)."""
    found: set[str] = set()
    stack = [message]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            product = node.get("product_id")
            if isinstance(product, str):
                found.add(product)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def _kraken_pairs(message: Any) -> list[str]:
    """v1: the pair ends a channel array; v2: each data entry's `symbol`."""
    if isinstance(message, list) and message and isinstance(message[-1], str):
        return [message[-1]]
    if isinstance(message, dict):
        data = message.get("data")
        if isinstance(data, list):
            return [
                e["symbol"]
                for e in data
                if isinstance(e, dict) and isinstance(e.get("symbol"), str)
            ]
    return []


def _deribit_name(message: Any) -> str | None:
    params = message.get("params") if isinstance(message, dict) else None
    data = params.get("data") if isinstance(params, dict) else None
    name = data.get("instrument_name") if isinstance(data, dict) else None
    return name if isinstance(name, str) else None


def _deribit_instruments(names: list[str]) -> tuple[Instrument, ...]:
    """Options by name; anything else (perpetuals, futures) as a plain pair at Deribit scale."""
    out = []
    for name in names:
        try:
            out.append(option_instrument(name))
        except ProtocolError:
            base = name.partition("-")[0].partition("_")[0]
            if not base:
                raise
            out.append(Instrument("deribit", base, "USD", name, DERIBIT_SCALE, DERIBIT_SCALE, 1, 1))
    return tuple(out)
