"""Deribit options feed: public JSON-RPC over one WebSocket.

On connect: `public/get_instruments` for each currency (the live chain is logged against ours),
`public/subscribe` to `book.{name}.100ms`, `ticker.{name}.100ms` and `trades.{name}.100ms`
(public clients may not use `raw`), then `public/set_heartbeat`. Books need `prev_change_id` to
equal the last `change_id`; a break marks that book stale and resubscribes its channel, which
brings a new snapshot (counted as a gap and a resync in /health). The server's `test_request`
heartbeats are answered with `public/test` at once (else Deribit closes the connection).
Tickers become `OptionTicker` events.

The chain is fixed once known: explicit names, or the nearest `deribit_max_options` options of
each currency from the REST `public/get_instruments` (`option_chain`, when the feed is built).
A venue unreachable at start-up does not stop the service: built with a `ChainSource` and no
instruments, the feed fetches the chain inside its run loop, retrying with capped jittered
backoff (the feed shows as disconnected with its last error meanwhile), then announces the
instruments (`Feed.add_instruments`) and connects.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
from websockets.asyncio.client import ClientConnection

from quantsaas.config import Settings
from quantsaas.errors import (
    ConfigError,
    ProtocolError,
    SequenceGap,
    UnknownInstrument,
    describe,
    quote,
)
from quantsaas.feeds.base import EventSink, FeedState
from quantsaas.feeds.deribit.book_sync import ChangeSync
from quantsaas.feeds.deribit.parse import (
    BookChange,
    Heartbeat,
    RpcError,
    RpcResult,
    option_instrument,
    parse_frame,
)
from quantsaas.feeds.transport import TransportConfig, WsFeed, venue_ssl_context
from quantsaas.model import Instrument, MarketEvent, OptionTicker

log = logging.getLogger(__name__)

URL = "wss://www.deribit.com/ws/api/v2"
INTERVAL = "100ms"
CHANNELS_PER_REQUEST = 100


@dataclass(frozen=True, slots=True)
class ChainSource:
    """Where the option chain comes from when no names are configured."""

    rest_url: str
    currencies: tuple[str, ...]
    max_options: int

    @classmethod
    def of(cls, settings: Settings) -> ChainSource:
        return cls(
            settings.deribit_rest_url.rstrip("/"),
            tuple(settings.deribit_currencies),
            settings.deribit_max_options,
        )

    def url(self) -> str:
        return f"{self.rest_url}/api/v2/public/get_instruments"

    def params(self, currency: str) -> dict[str, str]:
        return {"currency": currency, "kind": "option", "expired": "false"}

    def chosen(self, body: bytes) -> list[Instrument]:
        """One currency's `get_instruments` response -> its nearest options."""
        try:
            rows = orjson.loads(body)["result"]
            names = [row["instrument_name"] for row in chain_order(rows)]
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ProtocolError(f"deribit: malformed option chain: {describe(exc)}") from None
        return [option_instrument(name) for name in names[: self.max_options]]


def option_chain(settings: Settings) -> tuple[Instrument, ...]:
    """The options to serve: configured names, else the nearest ones of each currency."""
    if settings.deribit_instruments:
        try:
            return tuple(option_instrument(name) for name in settings.deribit_instruments)
        except ProtocolError as exc:
            raise ConfigError(str(exc)) from None
    source = ChainSource.of(settings)
    chosen: list[Instrument] = []
    for currency in source.currencies:
        try:
            verify = venue_ssl_context(settings.ca_file) or True
            response = httpx.get(
                source.url(), params=source.params(currency), timeout=10.0, verify=verify
            )
            response.raise_for_status()
            chosen.extend(source.chosen(response.content))
        except (httpx.HTTPError, ProtocolError) as exc:
            raise ConfigError(
                f"deribit: cannot fetch the {currency} option chain from {source.url()}: "
                f"{describe(exc)}; set QUANTSAAS_DERIBIT_INSTRUMENTS to name the options instead"
            ) from None
    return tuple(chosen)


def chain_order(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Nearest expiry first; within an expiry the strikes, calls before puts."""
    options = [row for row in rows if row.get("kind", "option") == "option"]
    return sorted(
        options,
        key=lambda r: (r["expiration_timestamp"], float(r["strike"]), r["option_type"]),
    )


class DeribitFeed(WsFeed):
    venue = "deribit"

    def __init__(
        self,
        instruments: Sequence[Instrument],
        url: str = URL,
        config: TransportConfig | None = None,
        heartbeat_s: int = 30,
        currencies: Sequence[str] = ("BTC", "ETH"),
        chain: ChainSource | None = None,
    ) -> None:
        super().__init__(instruments, url, config)
        self.heartbeat_s = heartbeat_s
        self.currencies = tuple(currencies)
        self.chain = chain
        """Set when the chain was not fetched yet: `run` fetches it first."""
        self.by_name = {instrument.native_symbol: instrument for instrument in self.instruments}
        self.syncs = {name: ChangeSync(name) for name in self.by_name}
        self.live_chain: dict[str, int] = {}
        """Currency -> number of live options the venue listed on this connection."""
        self.test_requests = 0
        self._ids = itertools.count(1)
        self._pending: dict[int, str] = {}
        self._conn: ClientConnection | None = None

    async def run(self, sink: EventSink) -> None:
        if self.chain is not None and not self.instruments:
            try:
                await self._fetch_chain(self.chain)
            except asyncio.CancelledError:
                self.stats.state = FeedState.STOPPED
                raise
        await super().run(sink)

    async def _fetch_chain(self, source: ChainSource) -> None:
        """Fetch the chain until it comes, with the transport's capped jittered backoff."""
        attempt = 0
        async with httpx.AsyncClient(timeout=10.0, verify=self.config.ssl or True) as http:
            while True:
                self.stats.state = FeedState.STARTING
                try:
                    chosen: list[Instrument] = []
                    for currency in source.currencies:
                        response = await http.get(source.url(), params=source.params(currency))
                        response.raise_for_status()
                        chosen.extend(source.chosen(response.content))
                    break
                except (httpx.HTTPError, ProtocolError) as exc:
                    self.stats.state = FeedState.DISCONNECTED
                    self._fail(
                        f"cannot fetch the option chain from {source.url()}: {describe(exc)}"
                    )
                delay = self.config.backoff.delay(attempt)
                attempt += 1
                await asyncio.sleep(delay)
        self.by_name = {instrument.native_symbol: instrument for instrument in chosen}
        self.syncs = {name: ChangeSync(name) for name in self.by_name}
        self.add_instruments(chosen)
        log.info("deribit: option chain of %d options fetched", len(chosen))

    def _request(self, method: str, params: dict[str, Any], what: str | None = None) -> str:
        ident = next(self._ids)
        self._pending[ident] = what or method
        body = {"jsonrpc": "2.0", "id": ident, "method": method, "params": params}
        return orjson.dumps(body).decode()

    def subscribe_messages(self) -> list[str]:
        messages = []
        for currency in self.currencies:
            params = {"currency": currency, "kind": "option", "expired": False}
            messages.append(self._request("public/get_instruments", params, f"chain:{currency}"))
        channels = [
            f"{kind}.{name}.{INTERVAL}"
            for name in self.by_name
            for kind in ("book", "ticker", "trades")
        ]
        for start in range(0, len(channels), CHANNELS_PER_REQUEST):
            chunk = channels[start : start + CHANNELS_PER_REQUEST]
            messages.append(self._request("public/subscribe", {"channels": chunk}))
        # last: test_requests start now, and the read loop must be running to answer them
        messages.append(self._request("public/set_heartbeat", {"interval": self.heartbeat_s}))
        return messages

    def probe_message(self) -> str | None:
        """`public/test`: Deribit's own heartbeats are at least 10 s apart, too slow to tell a
        dead connection within seconds."""
        return self._request("public/test", {})

    def on_connect(self) -> None:
        for sync in self.syncs.values():
            sync.reset()
        self._pending.clear()
        self.live_chain.clear()

    async def _read(self, conn: ClientConnection, sink: EventSink) -> None:
        self._conn = conn  # requests outside the subscribe burst: test replies, resubscribes
        try:
            await super()._read(conn, sink)
        finally:
            self._conn = None

    def _send(self, text: str) -> None:
        conn = self._conn
        if conn is not None:
            self.spawn(conn.send(text), "request")

    def request_resync(self, instrument: Instrument, reason: str) -> None:
        sync = self.syncs.get(instrument.native_symbol)
        if sync is not None:
            self._resubscribe(sync, f"engine: {reason}")

    def untrusted_book(self, symbol: str, reason: str) -> None:
        sync = self.syncs.get(symbol)
        if sync is not None:
            self.books_stale([self.by_name[symbol]], reason)
            self._resubscribe(sync, reason)

    def _resubscribe(self, sync: ChangeSync, reason: str) -> None:
        sync.reset()
        self.stats.resyncs += 1
        self.stats.state = FeedState.RESYNCING
        self.stats.record_error(reason)
        log.warning("deribit: resync: %s", reason)
        channel = {"channels": [f"book.{sync.name}.{INTERVAL}"]}
        self._send(self._request("public/unsubscribe", channel))
        self._send(self._request("public/subscribe", channel))

    def handle_frame(self, raw: str | bytes, ts_recv: int) -> list[MarketEvent]:
        try:
            item = parse_frame(raw, self.by_name, ts_recv)
        except UnknownInstrument as exc:
            raise ProtocolError(str(exc)) from None
        if item is None:
            self.stats.ignored += 1
            return []
        if isinstance(item, BookChange):
            return self._on_book(item)
        if isinstance(item, OptionTicker):
            return [item]
        if isinstance(item, list):
            return list(item)
        if isinstance(item, Heartbeat):
            if item.test_request:
                self.test_requests += 1
                self._send(self._request("public/test", {}))
        elif isinstance(item, RpcResult):
            self.stats.replies["RpcResult"] += 1
            self._on_result(item)
        elif isinstance(item, RpcError):
            self.stats.replies["RpcError"] += 1
            what = self._pending.pop(item.id, "request") if item.id is not None else "request"
            raise ProtocolError(f"deribit refused {what}: {item.code} {quote(item.message)}")
        return []

    def _on_result(self, item: RpcResult) -> None:
        what = self._pending.pop(item.id, "") if item.id is not None else ""
        if what.startswith("chain:") and isinstance(item.result, list):
            currency = what.partition(":")[2]
            live = {row.get("instrument_name") for row in item.result if isinstance(row, dict)}
            self.live_chain[currency] = len(live)
            gone = [n for n in self.by_name if n.startswith(f"{currency}-") and n not in live]
            if gone:
                self.stats.record_error(f"deribit: {len(gone)} configured options not listed")
                log.warning("deribit: options no longer listed: %s", ", ".join(gone[:10]))

    def _on_book(self, item: BookChange) -> list[MarketEvent]:
        name = item.event.instrument.native_symbol
        sync = self.syncs[name]
        try:
            event = sync.on_change(item)
        except SequenceGap as exc:
            self.stats.gaps += 1
            self.books_stale([item.event.instrument], str(exc))
            self._resubscribe(sync, str(exc))
            return []
        if event is None:
            return []
        if self.stats.state is not FeedState.LIVE and all(
            s.last_change_id is not None for s in self.syncs.values()
        ):
            self.stats.state = FeedState.LIVE
        return [event]
