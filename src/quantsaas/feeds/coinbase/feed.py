"""Coinbase feed: the Exchange `ws-feed` or the Advanced Trade feed, chosen by configuration.

Exchange: one subscribe to `level2_batch`, `matches`, `ticker` and `heartbeat` (level2 needs
authentication since 2023). Books come from the WebSocket snapshot only; the per-product `sequence`
on match/ticker/heartbeat must never go backwards (out-of-order delivery forces a reconnect).
Advanced Trade: one subscribe per channel (`level2`, `market_trades`, `ticker`, `heartbeats`);
the envelope `sequence_num` counts every message on the connection, so a jump means lost messages
and forces a reconnect; a book event carries the `sequence_num` of its frame (Exchange book
messages are numbered per product: `l2update` has no sequence). Either way a resync is a
reconnect, which brings fresh snapshots; book deltas before a product's snapshot are dropped.
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson
from msgspec.structs import replace

from quantsaas.errors import ConfigError, ProtocolError, SequenceGap
from quantsaas.feeds.base import FeedState
from quantsaas.feeds.coinbase import advanced_parse, exchange_parse
from quantsaas.feeds.transport import TransportConfig, WsFeed
from quantsaas.model import BookDelta, BookSnapshot, Instrument, MarketEvent

EXCHANGE_URL = "wss://ws-feed.exchange.coinbase.com"
ADVANCED_URL = "wss://advanced-trade-ws.coinbase.com"
EXCHANGE_CHANNELS = ("level2_batch", "matches", "ticker", "heartbeat")
ADVANCED_CHANNELS = ("heartbeats", "level2", "market_trades", "ticker")
APIS = ("exchange", "advanced")


class CoinbaseFeed(WsFeed):
    venue = "coinbase"

    def __init__(
        self,
        instruments: Sequence[Instrument],
        url: str | None = None,
        api: str = "exchange",
        config: TransportConfig | None = None,
    ) -> None:
        if api not in APIS:
            raise ConfigError(f"coinbase api must be one of {', '.join(APIS)}, not {api!r}")
        default = EXCHANGE_URL if api == "exchange" else ADVANCED_URL
        super().__init__(instruments, url or default, config)
        self.api = api
        self.by_product = {instrument.native_symbol: instrument for instrument in self.instruments}
        self._sequences: dict[str, int] = {}
        self._book_seq: dict[str, int] = {}
        """Exchange: book messages numbered per product (l2update carries no sequence)."""
        self._started: set[str] = set()
        """Advanced: products whose snapshot came on this connection (their book events carry
        the frame's `sequence_num`)."""
        self._envelope_seq: int | None = None
        self._all_started = False
        """Advanced: every product has had its snapshot on this connection."""

    def subscribe_messages(self) -> list[str]:
        products = list(self.by_product)
        if self.api == "exchange":
            message = {"type": "subscribe", "product_ids": products, "channels": EXCHANGE_CHANNELS}
            return [orjson.dumps(message).decode()]
        return [
            orjson.dumps({"type": "subscribe", "product_ids": products, "channel": ch}).decode()
            for ch in ADVANCED_CHANNELS
        ]

    def on_connect(self) -> None:
        self._sequences.clear()
        self._book_seq.clear()
        self._started.clear()
        self._all_started = False
        self._envelope_seq = None

    def request_resync(self, instrument: Instrument, reason: str) -> None:
        self.stats.resyncs += 1
        self.stats.state = FeedState.RESYNCING
        self.stats.record_error(f"engine: {reason}")
        self.reconnect_soon(f"resync requested: {reason}")

    def handle_frame(self, raw: str | bytes, ts_recv: int) -> list[MarketEvent]:
        if self.api == "exchange":
            return self._exchange(raw, ts_recv)
        return self._advanced(raw, ts_recv)

    def _exchange(self, raw: str | bytes, ts_recv: int) -> list[MarketEvent]:
        item = exchange_parse.parse_frame(raw, self.by_product, ts_recv)
        if type(item) is not exchange_parse.Sequenced:
            if item is None:
                self.stats.ignored += 1
            return []
        if item.sequence is not None:
            last = self._sequences.get(item.product)
            if last is not None and item.sequence < last:
                raise SequenceGap(
                    f"coinbase {item.product}: sequence went back from {last} to {item.sequence}"
                )
            self._sequences[item.product] = item.sequence
        return self._book_events(item.product, item.event)

    def _advanced(self, raw: str | bytes, ts_recv: int) -> list[MarketEvent]:
        typed = advanced_parse.typed_l2(raw, self.by_product, ts_recv)
        if typed is not None:  # most of the traffic
            sequence, books = typed
            last = self._envelope_seq
            if last is not None and sequence == last + 1:
                self._envelope_seq = sequence  # the usual case, written out: the next message
            elif not self._take_sequence(sequence):
                return []  # a late duplicate: ignore
            return books if self._all_started else self._first_books(books)
        try:
            channel, sequence, items = advanced_parse.parse_general(raw, self.by_product, ts_recv)
        except ProtocolError:
            # a bad row in a frame whose envelope is sound (a ticker's junk price) is counted
            # as malformed, but the frame was received: its number is taken, or the next good
            # frame would look like a lost message and cost a reconnect
            self._take_sequence(advanced_parse.envelope_sequence(raw))
            raise
        if channel != "l2_data" and channel not in advanced_parse.HANDLERS:
            self.stats.ignored += 1
        if not self._take_sequence(sequence):
            return []  # a late duplicate: ignore
        events = [event for _, event in items if event is not None]
        return self._first_books(events) if channel == "l2_data" else events

    def _first_books(self, books: list[MarketEvent]) -> list[MarketEvent]:
        """Book events while some product awaits its snapshot on this connection: a snapshot
        starts its product, a delta before it is dropped."""
        out: list[MarketEvent] = []
        started = self._started
        for book in books:
            product = book.instrument.native_symbol
            if type(book) is not BookDelta:
                started.add(product)
                if len(started) == len(self.by_product):
                    self._all_started = True
                    self.stats.state = FeedState.LIVE
                out.append(book)
            elif product in started:
                out.append(book)
        return out

    def _take_sequence(self, sequence: int | None) -> bool:
        """The connection's message counter: True for the next message, False for a late
        duplicate (or no readable number); SequenceGap when messages were lost."""
        if sequence is None:
            return False
        expected = None if self._envelope_seq is None else self._envelope_seq + 1
        if expected is not None and sequence > expected:
            raise SequenceGap(
                f"coinbase advanced: sequence_num jumped from {expected} to {sequence}"
            )
        if expected is not None and sequence < expected:
            return False
        self._envelope_seq = sequence
        return True

    def _book_events(self, product: str, event: MarketEvent | None) -> list[MarketEvent]:
        """Exchange: number book messages per product; deltas before the first snapshot are
        dropped."""
        if type(event) is BookDelta:
            seq = self._book_seq.get(product)
            if seq is None:
                return []
            self._book_seq[product] = seq = seq + 1
            return [replace(event, sequence=seq)]
        if type(event) is BookSnapshot:
            seq = self._book_seq[product] = self._book_seq.get(product, 0) + 1
            if len(self._book_seq) == len(self.by_product):
                self.stats.state = FeedState.LIVE
            return [replace(event, sequence=seq)]
        return [] if event is None else [event]


__all__ = ["APIS", "CoinbaseFeed", "ProtocolError"]
