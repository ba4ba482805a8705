"""A fake Binance Spot: combined/raw WebSocket streams and REST `/api/v3/depth` on one port.

Driven by the simulator (`SimMarket`, one update-id counter per symbol shared by the diff stream,
bookTicker and the REST snapshot) or by replaying a recorded file verbatim, line by line, with the
REST depth answered from a recorded response. Implements the control messages (SUBSCRIBE,
UNSUBSCRIBE, LIST_SUBSCRIPTIONS, SET_PROPERTY, GET_PROPERTY), the 5 messages/s inbound limit
(close 1008), ping frames (the `websockets` server sends them), the connection lifetime and the
faults of `fakes.server.FAULTS`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import orjson
from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request, Response

from quantsaas.fakes.market import SimMarket, SymbolTick
from quantsaas.fakes.server import BIG_BYTES, FAULTS, Client, FakeServer, json_response
from quantsaas.model import format_fixed

log = logging.getLogger(__name__)

MAX_INBOUND_PER_S = 5


@dataclass(frozen=True)
class BinanceFakeConfig:
    symbols: tuple[str, ...] = ("BTCUSDT", "ETHUSDT")
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
        self.market = SimMarket(list(self.config.symbols), self.config.rate, self.config.seed)
        self.update_id = dict.fromkeys(self.config.symbols, 1_000_000)
        self.trade_id = 0
        self.snapshots_served = 0
        self._pending: set[str] = set()

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
        """Fire a fault now (stale-snapshot and big-snapshot apply to the next REST snapshot)."""
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; known: {', '.join(FAULTS)}")
        self.faults_fired.append(fault)
        log.info("fake binance: fault %s", fault)
        if fault == "shutdown":
            self.spawn(self._shutdown())
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
        if url.path == "/api/v3/depth":
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            status, body = self._depth(query.get("symbol", ""), int(query.get("limit", "100")))
            return json_response(conn, status, body)
        if url.path in ("/ws", "/stream") or url.path.startswith("/ws/"):
            return None
        return conn.respond(404, "not found")

    def _depth(self, symbol: str, limit: int) -> tuple[int, bytes]:
        self.snapshots_served += 1
        if self.config.snapshot is not None:
            return 200, self.config.snapshot.read_bytes()
        if symbol not in self.update_id:
            return 400, b'{"code":-1121,"msg":"Invalid symbol."}'
        bids, asks = self.market.book(symbol)
        last_id = self.update_id[symbol]
        ask_rows = self.market.levels_text(symbol, asks[:limit])
        if "stale-snapshot" in self._pending:
            self._pending.discard("stale-snapshot")
            last_id -= 10_000
        if "big-snapshot" in self._pending:
            self._pending.discard("big-snapshot")
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
            if self.config.replay is not None:
                self.spawn(self.replay(client, self.config.replay, self.config.replay_per_s))
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
                await self.send(client, self._control(client, message), market=False)

    def _control(self, client: Client, message: str | bytes) -> str:
        try:
            request = orjson.loads(message)
            method, ident = request["method"], request.get("id")
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return '{"code":3,"msg":"Invalid JSON: expected value at line 1 column 1"}'
        params = request.get("params") or []
        result: object = None
        if method == "SUBSCRIBE":
            client.streams.update(params)
        elif method == "UNSUBSCRIBE":
            client.streams.difference_update(params)
        elif method == "LIST_SUBSCRIPTIONS":
            result = sorted(client.streams)
        elif method == "SET_PROPERTY" and params[:1] == ["combined"]:
            client.combined = bool(params[1])
        elif method == "GET_PROPERTY" and params[:1] == ["combined"]:
            result = client.combined
        else:
            error = {"code": 2, "msg": f"Invalid request: {method}", "id": ident}
            return orjson.dumps(error).decode()
        return orjson.dumps({"result": result, "id": ident}).decode()

    async def _market_loop(self) -> None:
        async for ticks in self.ticks(self.market, self.config.interval_s):
            for symbol, tick in ticks.items():
                for stream, frame in self._frames(symbol, tick):
                    for client in list(self.clients):
                        if stream in client.streams:
                            await self.send(client, _wrap(client, stream, frame))

    def _frames(self, symbol: str, tick: SymbolTick) -> list[tuple[str, bytes]]:
        lower, market, now = symbol.lower(), self.market, _ms()
        text = market.text
        frames: list[tuple[str, bytes]] = []
        for trade in tick.trades:
            self.trade_id += 1
            payload = {
                "e": "trade",
                "E": now,
                "s": symbol,
                "t": self.trade_id,
                "p": text(symbol, trade.price),
                "q": text(symbol, trade.size, False),
                "T": now,
                "m": trade.side.value == "sell",
                "M": True,
            }
            frames.append((f"{lower}@trade", orjson.dumps(payload)))
        if tick.changes:
            first = self.update_id[symbol] + 1
            if "gap" in self._pending:
                self._pending.discard("gap")
                first += 3  # ids first-3 .. first-1 are never sent
            self.update_id[symbol] = first + tick.changes - 1
            depth = {
                "e": "depthUpdate",
                "E": now,
                "s": symbol,
                "U": first,
                "u": self.update_id[symbol],
                "b": market.levels_text(symbol, tuple(sorted(tick.bids.items(), reverse=True))),
                "a": market.levels_text(symbol, tuple(sorted(tick.asks.items()))),
            }
            encoded = orjson.dumps(depth)
            frames.append((f"{lower}@depth@100ms", encoded))
            frames.append((f"{lower}@depth", encoded))
            bids, asks = market.book(symbol)
            if bids and asks:
                top = {
                    "u": self.update_id[symbol],
                    "s": symbol,
                    "b": text(symbol, bids[0][0]),
                    "B": text(symbol, bids[0][1], False),
                    "a": text(symbol, asks[0][0]),
                    "A": text(symbol, asks[0][1], False),
                }
                frames.append((f"{lower}@bookTicker", orjson.dumps(top)))
        return frames


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
