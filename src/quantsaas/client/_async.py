"""AsyncClient: live streams as async iterators of typed values, REST look-ups, and history.

Every stream of one client shares one WebSocket connection (`_connection.py`); each iterator
subscribes when it starts and unsubscribes when it ends (leave the `async for`, or close it).
Iterators yield the model's values (`Trade`, `Ticker`, `BookSnapshot`...) or the client's
(`Candle`, `Ofi`, `Vpin`, `Greeks`), and a `Gap` where part of a stream was lost; see
`_streams.py` for when that happens and what the client does about it.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import replace
from types import TracebackType
from typing import Any, TypeVar

from quantsaas.client._config import StreamConfig
from quantsaas.client._connection import Connection
from quantsaas.client._http import Http, auth_headers
from quantsaas.client._streams import BookWatcher, QueueWatcher, StreamStats, Watcher
from quantsaas.client.decode import Decoder, Event, listed_instruments, snapshot
from quantsaas.client.errors import ClientError, StreamStalled, UnknownSymbol
from quantsaas.client.events import Candle, Gap, Greeks, Ofi, Vpin
from quantsaas.client.exact import Codec
from quantsaas.client.history import History
from quantsaas.errors import quote
from quantsaas.model import BookSnapshot, Instrument, Ticker, Trade, symbol_to_path

DEFAULT_URL = "http://127.0.0.1:8000"
MAX_INBOUND_PER_S = 50
"""The server's own cap on inbound /ws messages per second (settings.ws_max_inbound_per_s)."""
API_KEY_ENV = "QUANTSAAS_API_KEY"
T = TypeVar("T")
Symbols = str | Sequence[str]


def _list(symbols: Symbols) -> list[str]:
    return [symbols] if isinstance(symbols, str) else list(symbols)


def ws_url(base_url: str) -> str:
    scheme, sep, rest = base_url.partition("://")
    if not sep or scheme not in ("http", "https"):
        raise ValueError(f"base_url must start with http:// or https://, not {quote(base_url)}")
    return f"{'wss' if scheme == 'https' else 'ws'}://{rest}/ws"


class AsyncClient:
    """A client of one Quant-SaaS server.

    `api_key` defaults to the environment variable QUANTSAAS_API_KEY (none: anonymous, which
    servers allow only with an anonymous tier). `stall_s`: a stream silent this long while
    connected raises StreamStalled; `give_up_s`: unreachable this long raises ServerGone.
    Use it as `async with AsyncClient(url) as client:`.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        api_key: str | None = None,
        *,
        stall_s: float | None = 60.0,
        give_up_s: float | None = 60.0,
        timeout_s: float = 30.0,
        progress: bool | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._ws_url = ws_url(self.base_url)
        key = api_key if api_key is not None else os.environ.get(API_KEY_ENV) or None
        self._api_key = key
        self._http = Http(self.base_url, key, timeout_s)
        self._config = StreamConfig(stall_s=stall_s, give_up_s=give_up_s)
        self._decoder = Decoder()
        self._connection: Connection | None = None
        self._connecting = asyncio.Lock()
        self._instruments_read = False
        self.history = History(self._http, self._instrument, progress)
        """Recorded history as pandas DataFrames (needs the `client` extra)."""

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.close()
        await self._http.aclose()

    @property
    def stats(self) -> StreamStats:
        """Messages, gaps, malformed messages, resyncs and reconnects of the connection."""
        return StreamStats() if self._connection is None else self._connection.streams.stats

    @property
    def down(self) -> dict[str, str]:
        """Data sources the server reports down right now (a venue, its relay) with the reason;
        their streams are quiet until they come back (and `stall_s` still applies)."""
        return {} if self._connection is None else dict(self._connection.down)

    # -- REST --------------------------------------------------------------------------------

    async def instruments(self) -> list[Instrument]:
        """Every instrument the server serves, options with their `OptionSpec` (read again from
        the server)."""
        found = listed_instruments(await self._http.get_json("/api/v1/instruments"))
        for instrument in found:
            self._decoder.add(instrument)
        self._instruments_read = True
        return found

    async def _ensure_instruments(self) -> None:
        if not self._instruments_read:
            await self.instruments()

    async def _instrument(self, symbol: str, venue: str | None) -> Instrument:
        """The instrument named `symbol` on `venue` (None: the only one), by the server's rule:
        its symbol or path symbol in any case (BTC/USD, btc-usd, an option's own name), else
        its native name."""
        await self._ensure_instruments()
        wanted = symbol.strip().upper()
        pool = [i for i in self._decoder.instruments.values() if venue in (None, i.venue)]
        found = [i for i in pool if wanted in (i.symbol.upper(), i.path_symbol.upper())]
        if not found:
            found = [i for i in pool if i.native_symbol.upper() == wanted]
        if len(found) == 1:
            return found[0]
        if not found:
            raise UnknownSymbol(f"no instrument {quote(symbol)} on {quote(venue or 'any venue')}")
        venues = sorted(i.venue for i in found)
        raise UnknownSymbol(f"{quote(symbol)} is on several venues {venues}: name one")

    async def fetch_book(
        self, symbol: str, venue: str | None = None, depth: int = 1000
    ) -> BookSnapshot:
        """The server's current book (GET /api/v1/book) as a BookSnapshot (`sequence` = nonce)."""
        instrument = await self._instrument(symbol, venue)
        path = f"/api/v1/book/{instrument.venue}/{symbol_to_path(instrument.symbol)}"
        body = await self._http.get_json(path, {"depth": depth})
        return snapshot(Codec(instrument), {**body, "data": body})

    def local_book(self, symbol: str, venue: str) -> BookSnapshot | None:
        """The book a running `book()` (or `stream(["book"])`) iterator keeps, right now."""
        if self._connection is None:
            return None
        stream = self._connection.streams.by_key.get(("book", venue, symbol))
        return None if stream is None or stream.book is None else stream.book.to_snapshot()

    # -- streams -----------------------------------------------------------------------------

    def trades(self, symbols: Symbols, venue: str | None = None) -> AsyncIterator[Trade | Gap]:
        """Every trade, in order (like ccxt's watchTrades, one trade per item)."""
        return self._queue(["trades"], symbols, venue)

    def ticker(self, symbols: Symbols, venue: str | None = None) -> AsyncIterator[Ticker | Gap]:
        return self._queue(["ticker"], symbols, venue)

    def candles(
        self, symbols: Symbols, venue: str | None = None, interval: str = "1m"
    ) -> AsyncIterator[Candle | Gap]:
        """Updates of the open candle and each candle once more when it closes (`closed`)."""
        return self._queue(["candles"], symbols, venue, lambda c: c.interval == interval)

    def ofi(self, symbols: Symbols, venue: str | None = None) -> AsyncIterator[Ofi | Gap]:
        return self._queue(["ofi"], symbols, venue)

    def vpin(self, symbols: Symbols, venue: str | None = None) -> AsyncIterator[Vpin | Gap]:
        return self._queue(["vpin"], symbols, venue)

    def greeks(self, underlying: Symbols, venue: str | None = None) -> AsyncIterator[Greeks | Gap]:
        """Every option of the chain on `underlying` (BTC/USD): ticker and the server's greeks."""
        return self._queue(["greeks"], underlying, venue)

    def stream(
        self, channels: Sequence[str], symbols: Symbols, venue: str | None = None
    ) -> AsyncIterator[Event | Gap]:
        """Several channels in one iterator, in arrival order; book streams yield their
        `BookSnapshot` and `BookDelta` values (the applied book: `local_book`)."""
        return self._queue(list(channels), symbols, venue)

    def book(
        self, symbols: Symbols, venue: str | None = None, depth: int | None = None
    ) -> AsyncIterator[BookSnapshot | Gap]:
        """The local book after each change (like ccxt's watchOrderBook), `depth` levels a side
        (None: all). A reader slower than the stream gets the newest book, never a backlog."""
        watcher = BookWatcher()
        return self._iterate(["book"], symbols, venue, watcher, lambda: watcher.take(depth))

    def _queue(
        self,
        channels: list[str],
        symbols: Symbols,
        venue: str | None,
        keep: Callable[[Any], bool] | None = None,
    ) -> AsyncIterator[Any]:
        watcher = QueueWatcher(self._config.queue_limit, keep)
        return self._iterate(channels, symbols, venue, watcher, watcher.take)

    async def _iterate(
        self,
        channels: list[str],
        symbols: Symbols,
        venue: str | None,
        watcher: Watcher,
        take: Callable[[], Any],
    ) -> AsyncIterator[Any]:
        connection = await self._connect()
        venues = None if venue is None else [venue]
        number = await connection.subscribe(channels, _list(symbols), venues, watcher)
        try:
            while True:
                yield await self._next(connection, watcher, take, channels)
        finally:
            connection.release(number)

    async def _connect(self) -> Connection:
        """The client's one connection, made by the first iterator (the others wait for it)."""
        async with self._connecting:
            await self._ensure_instruments()
            if self._connection is None:
                config = self._config
                if self._api_key is not None:
                    config = self._config = await self._paced_by_tier(config)
                self._connection = Connection(
                    self._ws_url,
                    auth_headers(self._api_key),
                    self._decoder,
                    config,
                    self.instruments,
                )
            return self._connection

    async def _paced_by_tier(self, config: StreamConfig) -> StreamConfig:
        """The tier's inbound message limit, if the server tells (a signed-in caller's)."""
        try:
            limits = (await self._http.get_json("/api/v1/limits"))["limits"]
            per_s = limits["ws_inbound_per_s"]
        except (ClientError, KeyError, TypeError):
            return config
        if type(per_s) is not int or per_s < 1:
            return config
        return replace(config, inbound_per_s=min(per_s, MAX_INBOUND_PER_S))

    async def _next(
        self, connection: Connection, watcher: Watcher, take: Callable[[], Any], what: list[str]
    ) -> Any:
        stall_s = self._config.stall_s
        while True:
            item = take()
            if item is not None:
                return item
            if watcher.error is not None:
                raise watcher.error
            try:
                async with asyncio.timeout(stall_s):
                    await watcher.wake.wait()
            except TimeoutError:
                assert stall_s is not None
                quiet = time.monotonic() - connection.connected_since
                if connection.connected and quiet >= stall_s:
                    raise StreamStalled(f"no {'/'.join(what)} for {stall_s:g} s") from None
