"""A fake Deribit: public JSON-RPC over WebSocket plus REST `get_instruments`/`get_currencies`.

The option chains of BTC and ETH come from the option simulator (`feeds.sim_options`) priced off
the simulated underlying; each option's book is a few levels around its simulated best bid/ask.
JSON-RPC ids are echoed with `usIn`/`usOut`/`usDiff`; `public/subscribe` refuses `raw` channels
without authentication (as the venue does) and ignores unknown instruments; `book.*` sends a
snapshot then `change`s whose `change_id`s advance by irregular steps with `prev_change_id`;
`ticker.*` carries mark price, IVs, underlying, open interest and greeks; `public/set_heartbeat`
starts `heartbeat` and `test_request` messages, and a `test_request` not answered with
`public/test` within the interval closes the connection. Faults: the shared menu where it
applies (`drop`, `gap` = one change never sent, so the next `prev_change_id` breaks, `malformed`,
`shutdown`, `silent`). With `replay`, the listed options are those the recorded file names, the
JSON-RPC requests are answered as usual, and the file is sent verbatim after the first
`public/subscribe`: no snapshot or change of the fake's own.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request, Response

from quantsaas.errors import ProtocolError
from quantsaas.fakes.catalog import scan_products
from quantsaas.fakes.market import SimMarket
from quantsaas.fakes.server import Client, FakeServer, json_response
from quantsaas.feeds.deribit.parse import option_instrument
from quantsaas.feeds.sim_options import OPTION_PRICE_SCALE, OptionChainSim
from quantsaas.model import Instrument, OptionTicker, format_fixed

log = logging.getLogger(__name__)

DERIBIT_FAULTS = ("drop", "gap", "malformed", "shutdown", "silent")
LEVELS = 4
Book = tuple[dict[int, int], dict[int, int]]


@dataclass(frozen=True)
class DeribitFakeConfig:
    currencies: tuple[str, ...] = ("BTC", "ETH")
    rate: float = 50.0
    seed: int = 7
    interval_s: float = 0.1
    heartbeat_s: float | None = None
    """Override the heartbeat interval clients ask for (tests); None: theirs (at least 10 s)."""
    replay: Path | None = None
    replay_per_s: float = 200.0


@dataclass(eq=False)
class DeribitClient(Client):
    channels: set[str] = field(default_factory=set)
    last_change: dict[str, int] = field(default_factory=dict)
    awaiting_test: bool = False


def _num(raw: int, scale: int) -> orjson.Fragment:
    """A JSON number token as Deribit writes it (`0.0005`, `22.0`)."""
    text = format_fixed(raw, scale)
    if "." not in text:
        return orjson.Fragment(text.encode())
    text = text.rstrip("0")
    return orjson.Fragment((text + "0" if text.endswith(".") else text).encode())


class FakeDeribit(FakeServer):
    def __init__(self, config: DeribitFakeConfig | None = None) -> None:
        super().__init__()
        self.config = config or DeribitFakeConfig()
        replay = self.config.replay
        self.replay_path, self.replay_per_s = replay, self.config.replay_per_s
        currencies = self.config.currencies if replay is None else ()
        self.market = SimMarket(
            [f"{c}/USD" for c in currencies], self.config.rate, self.config.seed
        )
        self.market.advance(1.0)
        now = time.time_ns()
        self.chains = {
            c: OptionChainSim(self.market.instrument(f"{c}/USD"), 0.6, now) for c in currencies
        }
        self.options: dict[str, Instrument] = {
            inst.native_symbol: inst for chain in self.chains.values() for inst in chain.instruments
        }
        if replay is not None:
            self.options = _recorded_options(replay)
        self.books: dict[str, Book] = {name: ({}, {}) for name in self.options}
        self.change_id = dict.fromkeys(self.options, 30_000_000_000)
        self.tickers: dict[str, OptionTicker] = {}
        self.rng = random.Random(self.config.seed)
        self.test_replies = 0
        self._pending: set[str] = set()
        self._refresh()

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        await self.listen(self._handler, host, port, process_request=self._http)
        if self.replay_path is None:
            self.spawn(self._market_loop())
        return self.port

    def inject(self, fault: str) -> None:
        if fault not in DERIBIT_FAULTS:
            raise ValueError(f"unknown deribit fault {fault!r}; known: {', '.join(DERIBIT_FAULTS)}")
        self.faults_fired.append(fault)
        if not self.shared_fault(fault, '{"jsonrpc":"2.0","method":"subscription","params":'):
            self._pending.add(fault)

    # -- chain and books --------------------------------------------------------------------

    def instruments_json(self, currency: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for name, inst in self.options.items():
            option = inst.option
            if option is None or currency not in ("", "any", inst.base):
                continue
            rows.append(
                {
                    "instrument_name": name,
                    "kind": "option",
                    "base_currency": inst.base,
                    "quote_currency": inst.quote,
                    "settlement_currency": inst.quote,
                    "counter_currency": "USD",
                    "option_type": option.kind,
                    "strike": _num(option.strike, option.strike_scale),
                    "expiration_timestamp": option.expiry_ns // 1_000_000,
                    "tick_size": 0.0001,
                    "min_trade_amount": 0.1,
                    "contract_size": 1.0,
                    "is_active": True,
                    "settlement_period": "day",
                    "creation_timestamp": option.expiry_ns // 1_000_000 - 86_400_000,
                    "instrument_id": len(rows) + 1,
                    "price_index": f"{inst.base.lower()}_usd",
                    "maker_commission": 0.0003,
                    "taker_commission": 0.0003,
                    "block_trade_commission": 0.0003,
                    "block_trade_min_trade_amount": 25,
                    "block_trade_tick_size": 0.0001,
                    "rfq": False,
                }
            )
        return rows

    def currencies_json(self) -> list[dict[str, Any]]:
        """`public/get_currencies`: the currencies of the listed options."""
        codes = dict.fromkeys(inst.base for inst in self.options.values())
        return [
            {
                "currency": code,
                "currency_long": code,
                "coin_type": "BITCOIN" if code == "BTC" else "ETHER" if code == "ETH" else "TOKEN",
                "fee_precision": 4,
                "min_confirmations": 1,
                "min_withdrawal_fee": 0.0001,
                "withdrawal_fee": 0.0001,
                "withdrawal_priorities": [],
            }
            for code in codes
        ]

    def _refresh(self) -> dict[str, list[list[Any]]]:
        """New tickers and books; returns per option the changed levels as (side, action...)."""
        now = time.time_ns()
        changes: dict[str, list[list[Any]]] = {}
        for currency, chain in self.chains.items():
            bids, asks = self.market.book(f"{currency}/USD")
            if not bids or not asks:
                continue
            mid = (bids[0][0] + asks[0][0]) / 2
            for ticker in chain.tickers(mid, now):
                name = ticker.instrument.native_symbol
                self.tickers[name] = ticker
                changes[name] = self._rebook(name, ticker)
        return changes

    def _rebook(self, name: str, ticker: OptionTicker) -> list[list[Any]]:
        rng = self.rng
        new_bids: dict[int, int] = {}
        new_asks: dict[int, int] = {}
        tick = 5  # 0.0005 at scale 4
        if ticker.best_bid_price is not None:
            top = ticker.best_bid_price - ticker.best_bid_price % tick
            for k in range(LEVELS):
                if top - k * tick > 0:
                    new_bids[top - k * tick] = rng.randint(1, 300)
        if ticker.best_ask_price is not None:
            top = ticker.best_ask_price + (-ticker.best_ask_price) % tick
            top = max(top, max(new_bids, default=0) + tick)
            for k in range(LEVELS):
                new_asks[top + k * tick] = rng.randint(1, 300)
        old_bids, old_asks = self.books[name]
        out: list[list[Any]] = []
        for side, old, new in (("bids", old_bids, new_bids), ("asks", old_asks, new_asks)):
            for price in old:
                if price not in new:
                    out.append([side, "delete", price, 0])
            for price, size in new.items():
                if old.get(price) != size:
                    out.append([side, "change" if price in old else "new", price, size])
        self.books[name] = (new_bids, new_asks)
        return out

    def _book_data(
        self, name: str, kind: str, rows: list[list[Any]], prev: int | None
    ) -> dict[str, Any]:
        def side(which: str) -> list[list[Any]]:
            return [
                [action, _num(price, OPTION_PRICE_SCALE), _num(size, 1)]
                for s, action, price, size in rows
                if s == which
            ]

        data: dict[str, Any] = {
            "type": kind,
            "timestamp": time.time_ns() // 1_000_000,
            "instrument_name": name,
            "change_id": self.change_id[name],
            "bids": side("bids"),
            "asks": side("asks"),
        }
        if prev is not None:
            data["prev_change_id"] = prev
        return data

    def _snapshot_rows(self, name: str) -> list[list[Any]]:
        bids, asks = self.books[name]
        rows = [["bids", "new", p, s] for p, s in sorted(bids.items(), reverse=True)]
        return rows + [["asks", "new", p, s] for p, s in sorted(asks.items())]

    def _ticker_data(self, t: OptionTicker) -> dict[str, Any]:
        scale = OPTION_PRICE_SCALE
        return {
            "instrument_name": t.instrument.native_symbol,
            "timestamp": t.ts_event // 1_000_000,
            "state": "open",
            "mark_price": _num(t.mark_price, scale),
            "mark_iv": t.mark_iv,
            "bid_iv": t.bid_iv if t.bid_iv is not None else 0.0,
            "ask_iv": t.ask_iv,
            "best_bid_price": _num(t.best_bid_price or 0, scale),
            "best_ask_price": None if t.best_ask_price is None else _num(t.best_ask_price, scale),
            "underlying_price": round(t.underlying_price, 4),
            "underlying_index": t.underlying_index,
            "index_price": round(t.index_price, 2),
            "interest_rate": 0.0,
            "open_interest": _num(t.open_interest, 1),
            "last_price": None,
            "stats": {"volume": None, "price_change": None, "low": None, "high": None},
            "greeks": {
                "delta": t.delta,
                "gamma": t.gamma,
                "vega": t.vega,
                "theta": t.theta,
                "rho": t.rho,
            },
        }

    # -- transport --------------------------------------------------------------------------

    def _http(self, conn: ServerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        result: Any = None
        if url.path == "/api/v2/public/get_instruments":
            result = self.instruments_json(query.get("currency", ""))
        elif url.path == "/api/v2/public/get_currencies":
            result = self.currencies_json()
        if result is not None:
            body = orjson.dumps({"jsonrpc": "2.0", "result": result, "testnet": False})
            return json_response(conn, 200, body)
        if url.path.startswith("/api/v2/public/"):
            return conn.respond(404, "not found")
        return None

    async def _handler(self, conn: ServerConnection) -> None:
        client = DeribitClient(conn)
        async with self.connected(client):
            await self.answer(client, self._rpc)

    def _reply(self, ident: Any, us_in: int, result: Any = None, error: Any = None) -> str:
        us_out = time.time_ns() // 1000
        body: dict[str, Any] = {"jsonrpc": "2.0", "id": ident}
        body.update({"error": error} if error is not None else {"result": result})
        body.update(usIn=us_in, usOut=us_out, usDiff=us_out - us_in, testnet=False)
        return orjson.dumps(body).decode()

    def _rpc(self, client: DeribitClient, message: str | bytes) -> list[str]:
        us_in = time.time_ns() // 1000
        try:
            request = orjson.loads(message)
            method, ident = request["method"], request.get("id")
            params = request.get("params") or {}
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return [self._reply(None, us_in, error={"code": -32700, "message": "parse_error"})]
        if method == "public/test":
            client.awaiting_test = False
            self.test_replies += 1
            return [self._reply(ident, us_in, {"version": "1.2.26"})]
        if method == "public/set_heartbeat":
            interval = self.config.heartbeat_s or max(10.0, float(params.get("interval", 0)))
            self.spawn(self._heartbeats(client, interval))
            return [self._reply(ident, us_in, "ok")]
        if method == "public/get_instruments":
            currency = str(params.get("currency", ""))
            return [self._reply(ident, us_in, self.instruments_json(currency))]
        if method == "public/get_currencies":
            return [self._reply(ident, us_in, self.currencies_json())]
        if method in ("public/subscribe", "public/unsubscribe"):
            return self._subscribe(client, method, ident, params.get("channels") or [], us_in)
        return [self._reply(ident, us_in, error={"code": -32601, "message": "Method not found"})]

    def _subscribe(
        self, client: DeribitClient, method: str, ident: Any, channels: list[str], us_in: int
    ) -> list[str]:
        if any(str(c).endswith(".raw") for c in channels):
            error = {"code": 13778, "message": "raw_subscriptions_not_available_for_unauthorized"}
            return [self._reply(ident, us_in, error=error)]
        accepted = [c for c in channels if c.split(".")[1:2] and c.split(".")[1] in self.options]
        frames = [self._reply(ident, us_in, accepted)]
        if self.replay_path is not None:
            if method == "public/subscribe":
                client.channels.update(accepted)
                self.begin_replay(client)  # the recording holds the snapshots
            return frames
        for channel in accepted:
            name = channel.split(".")[1]
            if method == "public/unsubscribe":
                client.channels.discard(channel)
                continue
            client.channels.add(channel)
            if channel.startswith("book."):
                data = self._book_data(name, "snapshot", self._snapshot_rows(name), None)
                client.last_change[name] = self.change_id[name]
                frames.append(_notification(channel, data))
        return frames

    async def _heartbeats(self, client: DeribitClient, interval: float) -> None:
        while client in self.clients:
            await asyncio.sleep(interval)
            if client.awaiting_test:
                await self.close_all(1000, "test_request not answered", [client])
                return
            client.awaiting_test = True
            frame = '{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"test_request"}}'
            await self.send(client, frame, market=False)

    async def _market_loop(self) -> None:
        async for _ in self.ticks(self.market, self.config.interval_s):
            changes = self._refresh()
            frames: list[tuple[str, str, str, int]] = []
            lose = "gap" in self._pending
            for name, rows in changes.items():
                channel = f"ticker.{name}.100ms"
                data = self._ticker_data(self.tickers[name])
                frames.append((channel, _notification(channel, data), name, 0))
                if not rows:
                    continue
                prev = self.change_id[name]
                self.change_id[name] = prev + self.rng.randint(1, 200)
                if lose:
                    lose = False
                    self._pending.discard("gap")
                    continue  # never sent: the next change's prev_change_id breaks the chain
                channel = f"book.{name}.100ms"
                data = self._book_data(name, "change", rows, prev)
                frames.append((channel, _notification(channel, data), name, self.change_id[name]))
            for client in list(self.clients):
                assert isinstance(client, DeribitClient)
                async with client.lock:
                    for channel, frame, name, change_id in frames:
                        if channel not in client.channels:
                            continue
                        if change_id:
                            if client.last_change.get(name, 0) >= change_id:
                                continue  # its snapshot, taken since, already holds this change
                            client.last_change[name] = change_id
                        await self.send(client, frame)


def _recorded_options(path: Path) -> dict[str, Instrument]:
    """The options a recorded file names (other instruments are not listed)."""
    found: dict[str, Instrument] = {}
    for name in scan_products("deribit", path):
        try:
            found[name] = option_instrument(name)
        except ProtocolError:
            continue
    return found


def _notification(channel: str, data: dict[str, Any]) -> str:
    body = {
        "jsonrpc": "2.0",
        "method": "subscription",
        "params": {"channel": channel, "data": data},
    }
    return orjson.dumps(body).decode()


__all__ = ["DERIBIT_FAULTS", "DeribitFakeConfig", "FakeDeribit"]
