"""A fake Coinbase: the Exchange `ws-feed` or the Advanced Trade feed, on one WebSocket port.

Exchange: subscribe within 5 s or be disconnected; `subscriptions` ack; `level2` without
authentication is refused as the real venue does; `level2_batch` snapshot then `l2update`s;
`last_match` then `match`; `ticker`; per-product `heartbeat`, with one per-product `sequence`.
Advanced: one channel per subscribe; every frame is an envelope with a per-connection
`sequence_num`; `l2_data` snapshot/update with `bid`/`offer`; `market_trades`; `ticker`;
`heartbeats` each second. REST: the market listings real clients load first (Exchange
`/products`, `/currencies`; Advanced `/api/v3/brokerage/market/products`, `/v2/currencies`,
`/v2/currencies/crypto`, `/v2/exchange-rates`). Driven by the simulator, or by a recorded file
sent verbatim after the first subscribe (nothing of the fake's own before or among its lines: no
ack, no snapshot, no `sequence_num` of its own), for any products.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request, Response

from quantsaas.fakes import catalog
from quantsaas.fakes.market import SimMarket, SymbolTick
from quantsaas.fakes.server import BIG_BYTES, FAULTS, Client, FakeServer, json_response
from quantsaas.model import format_fixed

log = logging.getLogger(__name__)

SUBSCRIBE_DEADLINE_S = 5.0
AUTH_REQUIRED = "level2, level3, and full channels now require authentication."
AUTH_FIELDS = ("signature", "key", "passphrase", "timestamp")
"""An Exchange subscribe carrying these is authenticated (the fake checks no signature)."""
EXCHANGE_PRIVATE = ("level2", "level3", "full", "user")
EXCHANGE_SERVED = ("level2", "level2_batch", "matches", "ticker", "heartbeat")
ADVANCED_SERVED = ("level2", "market_trades", "ticker", "heartbeats")


@dataclass(frozen=True)
class CoinbaseFakeConfig:
    api: str = "exchange"
    symbols: tuple[str, ...] = ()
    """Native products; empty: (BTC-USD, ETH-USD) when simulating, only the
    file's when replaying."""
    rate: float = 50.0
    seed: int = 7
    interval_s: float = 0.05
    heartbeat_s: float = 1.0
    replay: Path | None = None
    replay_per_s: float = 200.0


def _iso(ns: int | None = None) -> str:
    stamp = time.time_ns() if ns is None else ns
    moment = datetime.fromtimestamp(stamp // 1_000_000_000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp % 1_000_000_000:09d}Z"


class FakeCoinbase(FakeServer):
    def __init__(self, config: CoinbaseFakeConfig | None = None) -> None:
        super().__init__()
        self.config = config or CoinbaseFakeConfig()
        if self.config.api not in ("exchange", "advanced"):
            raise ValueError(f"unknown coinbase api {self.config.api!r}")
        replay = self.config.replay
        self.replay_path, self.replay_per_s = replay, self.config.replay_per_s
        simulated = list(self.config.symbols or ("BTC-USD", "ETH-USD")) if replay is None else []
        self.market = SimMarket(simulated, self.config.rate, self.config.seed)
        self.listings = {p: self.market.listing(p) for p in simulated}
        if replay is not None:
            for product in (*self.config.symbols, *catalog.scan_products("coinbase", replay)):
                self.listings.setdefault(product, catalog.listing(product))
        self.sequence = dict.fromkeys(simulated, 100_000)
        self.trade_id = 0
        self.heartbeats = 0
        self._pending: set[str] = set()

    @property
    def advanced(self) -> bool:
        return self.config.api == "advanced"

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        await self.listen(self._handler, host, port, process_request=self._http, ping_interval=20)
        if self.config.replay is None:
            self.spawn(self._market_loop())
            self.spawn(self._heartbeat_loop())
        return self.port

    def inject(self, fault: str) -> None:
        """Fire a fault now; big-snapshot closes every connection, so each client resubscribes
        and gets the padded snapshot."""
        if fault not in FAULTS or fault == "stale-snapshot":
            raise ValueError(f"fault {fault!r} does not apply to coinbase (snapshots come in-band)")
        self.faults_fired.append(fault)
        log.info("fake coinbase: fault %s", fault)
        if fault == "big-snapshot":
            self.arm_and_reconnect(fault)
        elif not self.shared_fault(fault, '{"type":"l2update","product_id":'):
            self._pending.add(fault)

    # -- REST -------------------------------------------------------------------------------

    def _http(self, conn: ServerConnection, request: Request) -> Response | None:
        """The listings, per API; anything else goes on to the WebSocket handshake."""
        url = urlsplit(request.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        rows = self.listings.values()
        bodies = (
            {
                "/products": lambda: catalog.coinbase_exchange_products(rows),
                "/currencies": lambda: catalog.coinbase_exchange_currencies(rows),
            }
            if not self.advanced
            else {
                "/api/v3/brokerage/market/products": lambda: catalog.coinbase_advanced_products(
                    rows, query.get("product_type")
                ),
                "/v2/currencies": lambda: catalog.coinbase_v2_currencies(rows, crypto=False),
                "/v2/currencies/crypto": lambda: catalog.coinbase_v2_currencies(rows, True),
                "/v2/exchange-rates": lambda: orjson.dumps(
                    {"data": {"currency": query.get("currency", "USD"), "rates": {}}}
                ),
            }
        )
        build = bodies.get(url.path.rstrip("/"))
        return None if build is None else json_response(conn, 200, build())

    # -- framing ----------------------------------------------------------------------------

    def _frame(self, client: Client, channel: str, events: list[Any]) -> str:
        """Advanced Trade envelope with the connection's next `sequence_num`."""
        client.sequence_num += 1
        if "gap" in self._pending and channel != "subscriptions":
            self._pending.discard("gap")
            client.sequence_num += 2
        body = {
            "channel": channel,
            "client_id": "",
            "timestamp": _iso(),
            "sequence_num": client.sequence_num,
            "events": events,
        }
        return orjson.dumps(body).decode()

    def _snapshot(self, client: Client, product: str) -> str:
        bids, asks = self.market.book(product)
        bid_rows = self.market.levels_text(product, bids)
        ask_rows = self.market.levels_text(product, asks)
        if self.take_armed("big-snapshot"):
            ask_rows += _padding(asks[-1][0] if asks else 1)
        if not self.advanced:
            return orjson.dumps(
                {"type": "snapshot", "product_id": product, "asks": ask_rows, "bids": bid_rows}
            ).decode()
        now = _iso()
        updates = [
            {"side": side, "event_time": now, "price_level": p, "new_quantity": q}
            for side, rows in (("bid", bid_rows), ("offer", ask_rows))
            for p, q in rows
        ]
        event = {"type": "snapshot", "product_id": product, "updates": updates}
        return self._frame(client, "l2_data", [event])

    # -- connection -------------------------------------------------------------------------

    async def _handler(self, conn: ServerConnection) -> None:
        client = Client(conn)
        self.clients.add(client)
        try:
            async with asyncio.timeout(SUBSCRIBE_DEADLINE_S):
                first = await conn.recv()
            await self._subscribe(client, first)
            async for message in conn:
                await self._subscribe(client, message)
        except TimeoutError:
            await conn.close(1008, "subscribe within 5 seconds")
        except Exception:  # closed or aborted
            return
        finally:
            self.clients.discard(client)

    async def _subscribe(self, client: Client, message: str | bytes) -> None:
        try:
            request = orjson.loads(message)
            products = list(request.get("product_ids") or [])
            if self.advanced:
                channels = [str(request["channel"])]
            else:
                channels = [
                    c["name"] if isinstance(c, dict) else str(c) for c in request["channels"]
                ]
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
            await self.send(client, '{"type":"error","message":"Malformed JSON"}', market=False)
            return
        if request.get("type") != "subscribe":
            return
        refusal = self._refusal(request, products, channels)
        if refusal is not None:
            await self.send(client, orjson.dumps(refusal).decode(), market=False)
        elif self.replay_path is not None:
            self.begin_replay(client)  # the recording holds the acks and snapshots
        else:
            async with client.lock:
                await self._subscribed(client, products, channels)

    def _refusal(
        self, request: dict[str, Any], products: list[str], channels: list[str]
    ) -> dict[str, str] | None:
        """The venue's error for this subscribe, or None to accept it."""
        authenticated = all(request.get(f) for f in AUTH_FIELDS)
        if not self.advanced and not authenticated and set(channels) & set(EXCHANGE_PRIVATE):
            return {"type": "error", "message": "Failed to subscribe", "reason": AUTH_REQUIRED}
        served = ADVANCED_SERVED if self.advanced else EXCHANGE_SERVED
        unserved = [c for c in channels if c not in served]
        if unserved:
            reason = f"{unserved[0][:40]} is not a valid channel (this fake serves {served})"
            return {"type": "error", "message": "Failed to subscribe", "reason": reason}
        unknown = [p for p in products if p not in self.listings]
        if unknown:
            message = f"Failed to subscribe: {unknown[0][:40]} is not a valid product"
            return {"type": "error", "message": message}
        return None

    async def _subscribed(self, client: Client, products: list[str], channels: list[str]) -> None:
        client.products.update(products)
        client.streams.update(channels)
        if self.advanced:
            ack = self._frame(
                client,
                "subscriptions",
                [{"subscriptions": {ch: sorted(client.products) for ch in client.streams}}],
            )
        else:
            ack = orjson.dumps(
                {
                    "type": "subscriptions",
                    "channels": [
                        {"name": ch, "product_ids": sorted(client.products)}
                        for ch in sorted(client.streams)
                    ],
                }
            ).decode()
        frames = [ack]
        if "level2_batch" in channels or "level2" in channels:
            frames += [self._snapshot(client, product) for product in products]
        if "matches" in channels:
            frames += [self._last_match(product) for product in products]
        for frame in frames:
            await self.send(client, frame, market=False)

    # -- market data ------------------------------------------------------------------------

    def _last_match(self, product: str) -> str:
        bids, _ = self.market.book(product)
        price = self.market.text(product, bids[0][0]) if bids else "1"
        body = {
            "type": "last_match",
            "trade_id": self.trade_id,
            "maker_order_id": "m",
            "taker_order_id": "t",
            "side": "buy",
            "size": "0.01000000",
            "price": price,
            "product_id": product,
            "sequence": self.sequence[product],
            "time": _iso(),
        }
        return orjson.dumps(body).decode()

    async def _market_loop(self) -> None:
        async for ticks in self.ticks(self.market, self.config.interval_s):
            for product, tick in ticks.items():
                for client in list(self.clients):
                    if product in client.products:
                        async with client.lock:
                            for frame in self._tick_frames(client, product, tick):
                                await self.send(client, frame)

    def _tick_frames(self, client: Client, product: str, tick: SymbolTick) -> list[str]:
        text, now = self.market.text, _iso()
        bids = [
            (text(product, p), text(product, s, False))
            for p, s in sorted(tick.bids.items(), reverse=True)
        ]
        asks = [(text(product, p), text(product, s, False)) for p, s in sorted(tick.asks.items())]
        frames: list[str] = []
        if self.advanced:
            if tick.changes and "level2" in client.streams:
                updates = [
                    {"side": side, "event_time": now, "price_level": p, "new_quantity": q}
                    for side, rows in (("bid", bids), ("offer", asks))
                    for p, q in rows
                ]
                event = {"type": "update", "product_id": product, "updates": updates}
                frames.append(self._frame(client, "l2_data", [event]))
            if tick.trades and "market_trades" in client.streams:
                trades = [
                    {
                        "trade_id": str(self._next_trade(product)),
                        "product_id": product,
                        "price": text(product, t.price),
                        "size": text(product, t.size, False),
                        "side": "SELL" if t.side.value == "buy" else "BUY",
                        "time": now,
                    }
                    for t in tick.trades
                ]
                frames.append(
                    self._frame(client, "market_trades", [{"type": "update", "trades": trades}])
                )
            if tick.trades and "ticker" in client.streams:
                frames.append(
                    self._frame(
                        client,
                        "ticker",
                        [{"type": "update", "tickers": [self._ticker(product, tick)]}],
                    )
                )
            return frames
        if tick.changes and client.streams & {"level2", "level2_batch"}:
            changes = [["buy", p, q] for p, q in bids] + [["sell", p, q] for p, q in asks]
            frames.append(
                orjson.dumps(
                    {"type": "l2update", "product_id": product, "changes": changes, "time": now}
                ).decode()
            )
        for trade in tick.trades:
            seq = self._next_sequence(product)
            if "matches" in client.streams:
                match = {
                    "type": "match",
                    "trade_id": self._next_trade(product),
                    "maker_order_id": "m",
                    "taker_order_id": "t",
                    "side": "sell" if trade.side.value == "buy" else "buy",
                    "size": text(product, trade.size, False),
                    "price": text(product, trade.price),
                    "product_id": product,
                    "sequence": seq,
                    "time": now,
                }
                frames.append(orjson.dumps(match).decode())
        if tick.trades and "ticker" in client.streams:
            body = {
                "type": "ticker",
                "sequence": self.sequence[product],
                **self._ticker(product, tick),
                "time": now,
            }
            frames.append(orjson.dumps(body).decode())
        return frames

    def _next_trade(self, product: str) -> int:
        self.trade_id += 1
        return self.trade_id

    def _next_sequence(self, product: str) -> int:
        self.sequence[product] += 1
        return self.sequence[product]

    def _ticker(self, product: str, tick: SymbolTick) -> dict[str, Any]:
        text = self.market.text
        bids, asks = self.market.book(product)
        last = tick.trades[-1]
        body = {"product_id": product, "price": text(product, last.price)}
        if self.advanced:
            return {
                **body,
                "type": "ticker",
                "volume_24_h": "0",
                "best_bid": text(product, bids[0][0]),
                "best_bid_quantity": text(product, bids[0][1], False),
                "best_ask": text(product, asks[0][0]),
                "best_ask_quantity": text(product, asks[0][1], False),
            }
        return {
            **body,
            "best_bid": text(product, bids[0][0]),
            "best_bid_size": text(product, bids[0][1], False),
            "best_ask": text(product, asks[0][0]),
            "best_ask_size": text(product, asks[0][1], False),
            "side": last.side.value,
            "last_size": text(product, last.size, False),
        }

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.heartbeat_s)
            self.heartbeats += 1
            for client in list(self.clients):
                async with client.lock:
                    for frame in self._heartbeat_frames(client):
                        await self.send(client, frame)

    def _heartbeat_frames(self, client: Client) -> list[str]:
        if self.advanced:
            if "heartbeats" not in client.streams:
                return []
            now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f000 +0000 UTC")
            event = {
                "current_time": f"{now} m=+{self.heartbeats}.0",
                "heartbeat_counter": self.heartbeats,
            }
            return [self._frame(client, "heartbeats", [event])]
        if "heartbeat" not in client.streams:
            return []
        frames = []
        for product in sorted(client.products):
            sequence = self.sequence[product]
            if "gap" in self._pending:
                self._pending.discard("gap")
                sequence -= 100  # out of order: older than what was already sent
            body = {
                "type": "heartbeat",
                "sequence": sequence,
                "last_trade_id": self.trade_id,
                "product_id": product,
                "time": _iso(),
            }
            frames.append(orjson.dumps(body).decode())
        return frames


def _padding(above: int) -> list[list[str]]:
    rows: list[list[str]] = []
    price = above * 1000 * 10**6
    written = 0
    while written < BIG_BYTES:
        price += 10**6
        row = [format_fixed(price, 8), "1.00000000"]
        rows.append(row)
        written += len(row[0]) + len(row[1]) + 8  # ["…","…"],
    return rows


__all__ = ["CoinbaseFakeConfig", "FakeCoinbase"]
