"""A fake Kraken Spot WebSocket v2, driven by the simulator (or replaying a file verbatim).

`status` on connect; `instrument` (pairs with their precisions); `subscribe`/`unsubscribe` with
one ack per symbol (`time_in`/`time_out`, `req_id` echoed; unknown pairs refused); application
`ping` -> `pong`; `heartbeat` each second when idle. `book` (depth 10/25/100/500/1000): a
snapshot, then updates diffed per client against the view it was last sent, each carrying the
CRC32 computed from the fake's own book after truncation to the depth, with numbers written as
fixed-precision JSON tokens (`0.10000000`) so the checksum text survives. `trade` and `ticker`
as the venue sends them. Faults: the shared menu (`fakes.server.FAULTS`; `gap` loses one book
update, which the client's checksum then catches) plus `checksum` (the next book update sent
carries a wrong checksum) and `maintenance` (`status` maintenance, no book data for
`maintenance_s`, then `online` again).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request, Response

from quantsaas.fakes import catalog
from quantsaas.fakes.market import SimMarket, SymbolTick
from quantsaas.fakes.server import BIG_BYTES, FAULTS, Client, FakeServer, json_response
from quantsaas.feeds.kraken.book import DEPTHS, checksum
from quantsaas.model import Level, format_fixed

log = logging.getLogger(__name__)

KRAKEN_FAULTS = (*FAULTS, "checksum", "maintenance")
QTY_DECIMALS = 8

View = tuple[dict[str, str], dict[str, str]]
"""What one client was last sent for one symbol: (bids, asks) price text -> qty text."""


@dataclass(frozen=True)
class KrakenFakeConfig:
    symbols: tuple[str, ...] = ()
    """Native products; empty: (BTC/USD, ETH/USD) when simulating, only the
    file's when replaying."""
    rate: float = 50.0
    seed: int = 7
    interval_s: float = 0.1
    heartbeat_s: float = 1.0
    maintenance_s: float = 3.0
    replay: Path | None = None
    replay_per_s: float = 200.0


@dataclass(eq=False)
class KrakenClient(Client):
    books: dict[str, int] = field(default_factory=dict)
    """Symbol -> subscribed depth."""
    views: dict[str, View] = field(default_factory=dict)
    trades: set[str] = field(default_factory=set)
    tickers: set[str] = field(default_factory=set)
    idle_since: float = field(default_factory=time.monotonic)


def _iso(ns: int | None = None) -> str:
    stamp = time.time_ns() if ns is None else ns
    moment = datetime.fromtimestamp(stamp // 1_000_000_000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp % 1_000_000_000 // 1000:06d}Z"


def _levels_json(levels: list[tuple[str, str]]) -> str:
    """Number tokens written as text, so trailing zeros reach the wire."""
    return "[" + ",".join(f'{{"price":{p},"qty":{q}}}' for p, q in levels) + "]"


class FakeKraken(FakeServer):
    def __init__(self, config: KrakenFakeConfig | None = None) -> None:
        super().__init__()
        self.config = config or KrakenFakeConfig()
        replay = self.config.replay
        self.replay_path, self.replay_per_s = replay, self.config.replay_per_s
        simulated = list(self.config.symbols or ("BTC/USD", "ETH/USD")) if replay is None else []
        self.market = SimMarket(simulated, self.config.rate, self.config.seed)
        self.listings = {s: self.market.listing(s) for s in simulated}
        if replay is not None:
            for symbol in (*self.config.symbols, *catalog.scan_products("kraken", replay)):
                self.listings.setdefault(symbol, catalog.listing(symbol))
        self.trade_id = 0
        self.system = "online"
        self.checksums_sent = 0
        self._pending: set[str] = set()
        self._lost = False

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        await self.listen(self._handler, host, port, process_request=self._http, ping_interval=20)
        if self.config.replay is None:
            self.spawn(self._market_loop())
            self.spawn(self._heartbeat_loop())
        return self.port

    def inject(self, fault: str) -> None:
        if fault not in KRAKEN_FAULTS or fault == "stale-snapshot":
            raise ValueError(f"unknown kraken fault {fault!r}; known: {', '.join(KRAKEN_FAULTS)}")
        self.faults_fired.append(fault)
        log.info("fake kraken: fault %s", fault)
        if self.shared_fault(fault, '{"channel":"book","type":"update","data":[{'):
            return
        if fault == "maintenance":
            self.spawn(self._maintenance())
        elif fault == "big-snapshot":  # every client reconnects and gets a padded snapshot
            self.arm_and_reconnect(fault)
        else:  # gap, checksum: the next book frames
            self._pending.add(fault)

    def _http(self, conn: ServerConnection, request: Request) -> Response | None:
        """REST `AssetPairs` and `Assets` for the listed pairs; else the WebSocket handshake."""
        path = urlsplit(request.path).path.rstrip("/")
        if path == "/0/public/AssetPairs":
            return json_response(conn, 200, catalog.kraken_asset_pairs(self.listings.values()))
        if path == "/0/public/Assets":
            return json_response(conn, 200, catalog.kraken_assets(self.listings.values()))
        return None

    async def _maintenance(self) -> None:
        await self._broadcast_status("maintenance")
        await asyncio.sleep(self.config.maintenance_s)
        await self._broadcast_status("online")

    async def _broadcast_status(self, system: str) -> None:
        self.system = system
        for client in list(self.clients):
            await self.send(client, self._status(), market=False)

    def _status(self) -> str:
        data = {"version": "2.0.10", "system": self.system, "api_version": "v2"}
        data["connection_id"] = 18125794168470749634  # type: ignore[assignment]
        return orjson.dumps({"channel": "status", "type": "update", "data": [data]}).decode()

    # -- connection -------------------------------------------------------------------------

    async def _handler(self, conn: ServerConnection) -> None:
        client = KrakenClient(conn)
        async with self.connected(client):
            if self.replay_path is None:  # a recording holds its own status frame
                await self.send(client, self._status(), market=False)
            await self.answer(client, self._request)

    def _request(self, client: KrakenClient, message: str | bytes) -> list[str]:
        time_in = _iso()
        try:
            request = orjson.loads(message)
            method = request["method"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return ['{"error":"Malformed request","method":"","success":false}']
        ident = {"req_id": request["req_id"]} if "req_id" in request else {}
        if method == "ping":
            return [orjson.dumps({"method": "pong", **ident, "time_in": time_in}).decode()]
        params = request.get("params") or {}
        if method not in ("subscribe", "unsubscribe") or not isinstance(params, dict):
            return [_refusal(str(method)[:40], "Method not supported", ident, time_in)]
        if self.replay_path is not None:
            if method == "subscribe":
                self.begin_replay(client)  # the recording holds the acks and snapshots
            return []
        channel, symbols = params.get("channel"), params.get("symbol") or []
        if channel == "instrument":
            reply = {"method": method, "result": {"channel": channel, "snapshot": True}}
            reply.update(success=True, **ident, time_in=time_in, time_out=_iso())
            return [orjson.dumps(reply).decode(), self._instruments()]
        depth = params.get("depth", 10)
        if channel == "book" and depth not in DEPTHS:
            return [_refusal(method, "Invalid depth", ident, time_in)]
        replies, snapshots = [], []
        for symbol in symbols:
            if symbol not in self.market.sims:
                replies.append(_refusal(method, "Currency pair not supported", ident, time_in))
                continue
            result: dict[str, Any] = {"channel": channel, "symbol": symbol}
            if channel == "book":
                result.update(depth=depth, snapshot=True)
                if method == "subscribe":
                    client.books[symbol] = depth
                    client.views.pop(symbol, None)
                    snapshots.append(self._book_frame(client, symbol, snapshot=True))
                else:
                    client.books.pop(symbol, None)
            elif channel in ("trade", "ticker"):
                chosen = client.trades if channel == "trade" else client.tickers
                (chosen.add if method == "subscribe" else chosen.discard)(symbol)
                if channel == "ticker" and method == "subscribe":
                    snapshots.append(self._ticker(symbol, "snapshot"))
            else:
                replies.append(
                    _refusal(method, f"Channel not supported: {channel}", ident, time_in)
                )
                continue
            reply = {"method": method, "result": result, "success": True, **ident}
            reply.update(time_in=time_in, time_out=_iso())
            replies.append(orjson.dumps(reply).decode())
        return replies + [frame for frame in snapshots if frame]

    # -- market data ------------------------------------------------------------------------

    def _instruments(self) -> str:
        pairs = []
        for symbol in self.market.sims:
            scale = self.market.instrument(symbol).price_scale
            base, _, quote = symbol.partition("/")
            pairs.append(
                {
                    "symbol": symbol,
                    "base": base,
                    "quote": quote,
                    "status": "online",
                    "price_precision": scale,
                    "qty_precision": QTY_DECIMALS,
                    "price_increment": orjson.Fragment(format_fixed(1, scale).encode()),
                    "qty_increment": orjson.Fragment(format_fixed(1, QTY_DECIMALS).encode()),
                }
            )
        data = {"assets": [], "pairs": pairs}
        return orjson.dumps({"channel": "instrument", "type": "snapshot", "data": data}).decode()

    def _price(self, symbol: str, raw: int) -> str:
        return format_fixed(raw, self.market.instrument(symbol).price_scale)

    def _view(self, symbol: str, depth: int) -> View:
        bids, asks = self.market.book(symbol)
        ss = self.market.instrument(symbol).size_scale

        def text(levels: tuple[Level, ...]) -> dict[str, str]:
            return {
                self._price(symbol, p): format_fixed(s * 10 ** (QTY_DECIMALS - ss), QTY_DECIMALS)
                for p, s in levels[:depth]
            }

        return text(bids), text(asks)

    def _book_frame(self, client: KrakenClient, symbol: str, snapshot: bool) -> str | None:
        depth = client.books[symbol]
        view = self._view(symbol, depth)
        old = client.views.get(symbol)
        client.views[symbol] = view
        if snapshot or old is None:
            bids, asks = list(view[0].items()), list(view[1].items())
            kind = "snapshot"
        else:
            full_bids, full_asks = self._view(symbol, 1 << 30)
            bids, asks = _diff(old[0], view[0], full_bids), _diff(old[1], view[1], full_asks)
            if not bids and not asks:
                return None
            kind = "update"
        crc = checksum(list(view[1].items())[:10], list(view[0].items())[:10])
        if kind == "update" and "checksum" in self._pending:
            crc = (crc + 1) & 0xFFFFFFFF
            self._pending.discard("checksum")
        self.checksums_sent += 1
        if kind == "snapshot" and self.take_armed("big-snapshot"):
            asks = asks + _padding(BIG_BYTES)
        stamp = "" if kind == "snapshot" else f',"timestamp":"{_iso()}"'
        return (
            f'{{"channel":"book","type":"{kind}","data":[{{"symbol":"{symbol}",'
            f'"bids":{_levels_json(bids)},"asks":{_levels_json(asks)},'
            f'"checksum":{crc}{stamp}}}]}}'
        )

    def _ticker(self, symbol: str, kind: str) -> str:
        bids, asks = self.market.book(symbol)
        if not bids or not asks:
            return ""
        ss = self.market.instrument(symbol).size_scale
        qty = {"bid_qty": bids[0][1], "ask_qty": asks[0][1]}
        sizes = {
            k: format_fixed(v * 10 ** (QTY_DECIMALS - ss), QTY_DECIMALS) for k, v in qty.items()
        }
        return (
            f'{{"channel":"ticker","type":"{kind}","data":[{{"symbol":"{symbol}",'
            f'"bid":{self._price(symbol, bids[0][0])},"bid_qty":{sizes["bid_qty"]},'
            f'"ask":{self._price(symbol, asks[0][0])},"ask_qty":{sizes["ask_qty"]},'
            f'"timestamp":"{_iso()}"}}]}}'
        )

    def _trades(self, symbol: str, tick: SymbolTick) -> str:
        rows = []
        ss = self.market.instrument(symbol).size_scale
        for trade in tick.trades:
            self.trade_id += 1
            qty = format_fixed(trade.size * 10 ** (QTY_DECIMALS - ss), QTY_DECIMALS)
            rows.append(
                f'{{"symbol":"{symbol}","side":"{trade.side.value}",'
                f'"price":{self._price(symbol, trade.price)},"qty":{qty},"ord_type":"limit",'
                f'"trade_id":{self.trade_id},"timestamp":"{_iso()}"}}'
            )
        return f'{{"channel":"trade","type":"update","data":[{",".join(rows)}]}}' if rows else ""

    async def _market_loop(self) -> None:
        async for ticks in self.ticks(self.market, self.config.interval_s):
            lose = "gap" in self._pending
            for client in list(self.clients):
                async with client.lock:
                    assert isinstance(client, KrakenClient)
                    for frame in self._client_frames(client, ticks, lose):
                        await self.send(client, frame)
                        client.idle_since = time.monotonic()
            if self._lost:
                self._pending.discard("gap")
            self._lost = False

    def _client_frames(
        self, client: KrakenClient, ticks: dict[str, SymbolTick], lose: bool
    ) -> list[str]:
        frames = []
        for symbol, tick in ticks.items():
            if symbol in client.trades and (frame := self._trades(symbol, tick)):
                frames.append(frame)
            if (
                symbol in client.tickers
                and tick.trades
                and (frame := self._ticker(symbol, "update"))
            ):
                frames.append(frame)
            if symbol in client.books and self.system == "online" and tick.changes:
                update = self._book_frame(client, symbol, snapshot=False)
                if update and lose:
                    lose = False  # this update is never sent: the client's book drifts
                    self._lost = True
                elif update:
                    frames.append(update)
        return frames

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.heartbeat_s)
            now = time.monotonic()
            for client in list(self.clients):
                assert isinstance(client, KrakenClient)
                if client.books and now - client.idle_since >= self.config.heartbeat_s:
                    with contextlib.suppress(Exception):
                        await self.send(client, '{"channel":"heartbeat"}', market=False)


def _diff(
    old: dict[str, str], new: dict[str, str], present: dict[str, str]
) -> list[tuple[str, str]]:
    """Changed and new levels, and deletions of levels gone from the venue's book side (levels
    only pushed out of the depth are not deleted: the client truncates, as the venue expects)."""
    out = [(p, q) for p, q in new.items() if old.get(p) != q]
    zero = format_fixed(0, QTY_DECIMALS)
    out.extend((p, zero) for p in old if p not in new and p not in present)
    return out


def _padding(size: int) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    price, written = 10_000_000, 0
    while written < size:
        price += 1
        row = (f"{price}.0", "1.00000000")
        rows.append(row)
        written += len(row[0]) + len(row[1]) + 18  # {"price":…,"qty":…},
    return rows


def _refusal(method: str, error: str, ident: dict[str, Any], time_in: str) -> str:
    reply = {"error": error, "method": method, "success": False, **ident}
    reply.update(time_in=time_in, time_out=_iso())
    return orjson.dumps(reply).decode()


__all__ = ["KRAKEN_FAULTS", "FakeKraken", "KrakenFakeConfig"]
