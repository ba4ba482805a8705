"""A fake Binance Spot: WebSocket streams and the public REST endpoints on one port.

REST: `/api/v3/depth` (on the diff streams' update-id counter), `/api/v3/exchangeInfo` (the listed
products, `symbol=`/`symbols=` filters), `/api/v3/ping`, `/api/v3/time`. WebSocket: `/ws`,
`/ws/<stream>...` (raw payloads) and `/stream?streams=a/b` (combined), the control messages
(SUBSCRIBE, UNSUBSCRIBE, LIST_SUBSCRIPTIONS, SET_PROPERTY, GET_PROPERTY), every stream of
`fakes.binance_streams` (others refused as Binance refuses them), the 5 messages/s inbound limit
(close 1008), ping frames (the `websockets` server sends them), the connection lifetime and the
faults of `fakes.server.FAULTS`. Driven by the simulator (`SimMarket`), or by a recorded file sent
verbatim (it starts at connect when the URL names streams, else after the first SUBSCRIBE is
answered), with REST depth answered from a recorded response.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import orjson
from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request, Response

from quantsaas.fakes.binance_streams import BinanceStreams, valid_stream
from quantsaas.fakes.catalog import Listing, binance_exchange_info, listing, scan_products
from quantsaas.fakes.market import SimMarket
from quantsaas.fakes.server import BIG_BYTES, FAULTS, Client, FakeServer, json_response
from quantsaas.model import format_fixed

log = logging.getLogger(__name__)

MAX_INBOUND_PER_S = 5


@dataclass(frozen=True)
class BinanceFakeConfig:
    symbols: tuple[str, ...] = ()
    """Native products; empty: (BTCUSDT, ETHUSDT) when simulating, only the
    file's when replaying."""
    rate: float = 50.0
    seed: int = 7
    interval_s: float = 0.1
    lifetime_s: float = 86_400.0
    ping_interval_s: float = 20.0
    ping_timeout_s: float = 60.0
    """Binance closes a connection whose pong is this late (1 minute since Feb 2025)."""
    replay: Path | None = None
    snapshot: Path | None = None
    replay_per_s: float = 200.0


class FakeBinance(FakeServer):
    def __init__(self, config: BinanceFakeConfig | None = None) -> None:
        super().__init__()
        self.config = config or BinanceFakeConfig()
        replay = self.config.replay
        self.replay_path, self.replay_per_s = replay, self.config.replay_per_s
        simulated = list(self.config.symbols or ("BTCUSDT", "ETHUSDT")) if replay is None else []
        self.market = SimMarket(simulated, self.config.rate, self.config.seed)
        self.streams = BinanceStreams(self.market)
        self.listings: dict[str, Listing] = {s: self.market.listing(s) for s in simulated}
        if replay is not None:
            for symbol in (*self.config.symbols, *scan_products("binance", replay)):
                self.listings.setdefault(symbol, listing(symbol))
        self.snapshots_served = 0
        self._pending: set[str] = set()

    @property
    def update_id(self) -> dict[str, int]:
        """Symbol -> the last update id sent (the diff streams' and REST depth's counter)."""
        return {symbol: state.update_id for symbol, state in self.streams.state.items()}

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        await self.listen(
            self._handler,
            host,
            port,
            process_request=self._http,
            ping_interval=self.config.ping_interval_s,
            ping_timeout=self.config.ping_timeout_s,
        )
        if self.config.replay is None:
            self.spawn(self._market_loop())
        return self.port

    def inject(self, fault: str) -> None:
        """Fire a fault now; stale-snapshot and big-snapshot arm the next REST snapshots and
        close every connection, so each client must fetch one."""
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; known: {', '.join(FAULTS)}")
        self.faults_fired.append(fault)
        log.info("fake binance: fault %s", fault)
        if fault == "shutdown":
            self.spawn(self._shutdown())
        elif fault in ("stale-snapshot", "big-snapshot"):
            self.arm_and_reconnect(fault)
        elif not self.shared_fault(fault, '{"stream":"broken","data":{"e":'):
            self._pending.add(fault)

    async def _shutdown(self) -> None:
        notice = orjson.dumps(
            {"stream": "!serverShutdown", "data": {"e": "serverShutdown", "E": _ms()}}
        )
        notified = list(self.clients)
        for client in notified:
            await self.send(client, notice.decode(), market=False)
        await asyncio.sleep(1.0)
        await self.close_all(1001, "server shutdown", notified)

    # -- REST -------------------------------------------------------------------------------

    def _http(self, conn: ServerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path == "/api/v3/depth":
            status, body = self._depth(query.get("symbol", ""), query.get("limit", "100"))
            return json_response(conn, status, body)
        if url.path == "/api/v3/exchangeInfo":
            status, body = self._exchange_info(query)
            return json_response(conn, status, body)
        if url.path == "/api/v3/ping":
            return json_response(conn, 200, b"{}")
        if url.path == "/api/v3/time":
            return json_response(conn, 200, orjson.dumps({"serverTime": _ms()}))
        if url.path in ("/ws", "/stream") or url.path.startswith("/ws/"):
            return None
        return conn.respond(404, "not found")

    def _exchange_info(self, query: dict[str, str]) -> tuple[int, bytes]:
        wanted: set[str] | None = None
        try:
            if "symbol" in query:
                wanted = {query["symbol"]}
            elif "symbols" in query:
                wanted = {str(s) for s in json.loads(query["symbols"])}
        except (ValueError, TypeError):
            return 400, b'{"code":-1100,"msg":"Illegal characters found in parameter \'symbols\'."}'
        if wanted is not None and not wanted <= set(self.listings):
            return 400, b'{"code":-1121,"msg":"Invalid symbol."}'
        return 200, binance_exchange_info(self.listings.values(), wanted)

    def _depth(self, symbol: str, limit_text: str) -> tuple[int, bytes]:
        if not limit_text.isdigit() or not 1 <= int(limit_text) <= 5000:
            return 400, b'{"code":-1100,"msg":"Illegal characters found in parameter \'limit\'."}'
        if symbol not in self.listings:
            return 400, b'{"code":-1121,"msg":"Invalid symbol."}'
        self.snapshots_served += 1
        if self.config.snapshot is not None:
            return 200, self.config.snapshot.read_bytes()
        if symbol not in self.market.sims:
            return 200, b'{"lastUpdateId":0,"bids":[],"asks":[]}'
        limit = int(limit_text)
        bids, asks = self.market.book(symbol)
        last_id = self.streams.state[symbol].update_id
        ask_rows = self.market.levels_text(symbol, asks[:limit])
        if self.take_armed("stale-snapshot"):
            last_id -= 10_000
        if self.take_armed("big-snapshot"):
            ask_rows += _padding(asks[-1][0] if asks else 1, BIG_BYTES)
        bid_rows = self.market.levels_text(symbol, bids[:limit])
        return 200, orjson.dumps({"lastUpdateId": last_id, "bids": bid_rows, "asks": ask_rows})

    # -- WebSocket --------------------------------------------------------------------------

    async def _handler(self, conn: ServerConnection) -> None:
        assert conn.request is not None
        url = urlsplit(conn.request.path)
        client = Client(conn)
        if url.path == "/stream":
            client.streams = set(parse_qs(url.query).get("streams", [""])[0].split("/")) - {""}
        else:  # /ws or /ws/<stream>[/<stream>...]: raw payloads
            client.streams = set(url.path[4:].split("/")) - {""}
            client.combined = False
        opened = time.monotonic()
        window: list[float] = []
        async with self.connected(client):
            if client.streams & set(self._named_streams(client)):
                self.begin_replay(client)
            lifetime = self.config.lifetime_s
            while True:
                remaining = lifetime - (time.monotonic() - opened)
                if remaining <= 0:
                    await conn.close(1001, "connection lifetime reached")
                    return
                try:
                    async with asyncio.timeout(remaining):
                        message = await conn.recv()
                except TimeoutError:
                    continue
                now = time.monotonic()
                window = [t for t in window if now - t < 1.0] + [now]
                if len(window) > MAX_INBOUND_PER_S:
                    await conn.close(1008, "Too many requests")
                    return
                reply, subscribed = self._control(client, message)
                await self.send(client, reply, market=False)
                if subscribed:
                    self.begin_replay(client)

    @staticmethod
    def _named_streams(client: Client) -> list[str]:
        return [name for name in client.streams if valid_stream(name)]

    def _control(self, client: Client, message: str | bytes) -> tuple[str, bool]:
        """The reply to one control message, and whether it subscribed to something."""
        try:
            request = orjson.loads(message)
            method, ident = request["method"], request.get("id")
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return '{"code":3,"msg":"Invalid JSON: expected value at line 1 column 1"}', False
        params = request.get("params") or []
        if not isinstance(params, list):
            return _error(2, "Invalid request: too many parameters", ident), False
        result: object = None
        if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            if not all(isinstance(p, str) and valid_stream(p) for p in params):
                return _error(2, "Invalid request: invalid stream", ident), False
            if method == "SUBSCRIBE":
                client.streams.update(params)
            else:
                client.streams.difference_update(params)
        elif method == "LIST_SUBSCRIPTIONS":
            result = sorted(client.streams)
        elif method == "SET_PROPERTY" and params[:1] == ["combined"]:
            if len(params) != 2 or not isinstance(params[1], bool):
                return _error(1, "Invalid value type: expected Boolean", ident), False
            client.combined = params[1]
        elif method == "GET_PROPERTY" and params[:1] == ["combined"]:
            result = client.combined
        elif method in ("SET_PROPERTY", "GET_PROPERTY"):
            return _error(0, "Unknown property", ident), False
        else:
            text = str(method)[:40]
            return _error(2, f"Invalid request: unknown variant {text}", ident), False
        reply = orjson.dumps({"result": result, "id": ident}).decode()
        return reply, method == "SUBSCRIBE" and bool(params)

    async def _market_loop(self) -> None:
        count = 0
        slow_every = max(1, round(1.0 / self.config.interval_s))
        async for ticks in self.ticks(self.market, self.config.interval_s):
            count += 1
            now = _ms()
            frames: list[tuple[str, bytes]] = []
            for symbol, tick in ticks.items():
                gap = "gap" in self._pending and bool(tick.changes)
                if gap:
                    self._pending.discard("gap")
                frames.extend(self.streams.fast(symbol, tick, now, gap))
                if count % slow_every == 0:
                    frames.extend(self.streams.slow(symbol, now))
            if count % slow_every == 0:
                frames.append(("!miniTicker@arr", self.streams.mini_array(now)))
            for client in list(self.clients):
                for stream, frame in frames:
                    if stream in client.streams:
                        await self.send(client, _wrap(client, stream, frame))


def _error(code: int, msg: str, ident: object) -> str:
    """An error reply as Binance sends it on the stream endpoints."""
    return orjson.dumps({"error": {"code": code, "msg": msg}, "id": ident}).decode()


def _wrap(client: Client, stream: str, payload: bytes) -> str:
    if client.combined:
        return f'{{"stream":"{stream}","data":{payload.decode()}}}'
    return payload.decode()


def _padding(above: int, size: int) -> list[list[str]]:
    """Deep ask levels far above the book, ascending, about `size` bytes of JSON."""
    rows: list[list[str]] = []
    price = above * 1000 * 10**6
    written = 0
    while written < size:
        price += 10**6
        row = [format_fixed(price, 8), "1.00000000"]
        rows.append(row)
        written += len(row[0]) + len(row[1]) + 8
    return rows


def _ms() -> int:
    return time.time_ns() // 1_000_000


__all__ = ["BinanceFakeConfig", "FakeBinance"]
