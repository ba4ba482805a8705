"""The fake Binance's market streams: which names it serves, and their payloads.

Served (spot names and push intervals as documented): `<s>@trade`, `@aggTrade`, `@bookTicker`
(real time, i.e. every tick), `@depth` (1000 ms) and `@depth@100ms` diffs on one update-id
counter shared with REST `/api/v3/depth`, partial `@depth5|10|20[@100ms]`, `@kline_<interval>`,
`@miniTicker`, `@ticker`, `@ticker_1h|4h|1d`, `@avgPrice` (1000 ms) and `!miniTicker@arr`.
Any other name is refused as Binance refuses a malformed one (`Invalid request: invalid stream`);
a well-formed name of an unknown symbol is accepted and stays silent, as on the venue.

Windows (tickers, average price) come from one-minute buckets kept for a day, so memory is bounded
however long the fake runs. Every payload is built from exact integers and written as the venue's
8-decimal text.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field

import orjson

from quantsaas.fakes.market import FAKE_SCALE, SimMarket, SymbolTick
from quantsaas.model import Trade, format_fixed

KLINE_MS = {
    "1s": 1_000,
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "6h": 21_600_000,
    "8h": 28_800_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
    "3d": 259_200_000,
    "1w": 604_800_000,
    "1M": 2_592_000_000,
}
WINDOWS_MS = {"1h": 3_600_000, "4h": 14_400_000, "1d": 86_400_000}
_NAME = re.compile(
    r"^[a-z0-9]{2,20}@(trade|aggTrade|bookTicker|depth(5|10|20)?(@100ms|@1000ms)?"
    r"|kline_(\w{2,3})|miniTicker|ticker|ticker_(1h|4h|1d)|avgPrice)$"
)


def valid_stream(name: str) -> bool:
    """A stream name this fake serves (the symbol part may name no listed product)."""
    if name == "!miniTicker@arr":
        return True
    match = _NAME.match(name)
    return match is not None and (match[4] is None or match[4] in KLINE_MS)


@dataclass
class Bucket:
    """Trades of one period: prices at the instrument's price scale, sizes at its size scale."""

    start_ms: int
    open: int = 0
    high: int = 0
    low: int = 0
    close: int = 0
    volume: int = 0
    quote: int = 0
    """Sum of price * size, at price scale + size scale."""
    taker_buy: int = 0
    taker_buy_quote: int = 0
    count: int = 0
    first_id: int = -1
    last_id: int = -1

    def add(self, trade: Trade, trade_id: int) -> None:
        price, size = trade.price, trade.size
        if not self.count:
            self.open = self.high = self.low = price
            self.first_id = trade_id
        self.high, self.low, self.close = max(self.high, price), min(self.low, price), price
        self.volume += size
        self.quote += price * size
        if trade.side.value == "buy":
            self.taker_buy += size
            self.taker_buy_quote += price * size
        self.count += 1
        self.last_id = trade_id

    def merge(self, other: Bucket) -> None:
        if not other.count:
            return
        if not self.count:
            self.open, self.high, self.low = other.open, other.high, other.low
            self.first_id = other.first_id
        self.high, self.low = max(self.high, other.high), min(self.low, other.low)
        self.close, self.last_id = other.close, other.last_id
        self.volume += other.volume
        self.quote += other.quote
        self.taker_buy += other.taker_buy
        self.taker_buy_quote += other.taker_buy_quote
        self.count += other.count


@dataclass
class SymbolState:
    update_id: int = 1_000_000
    slow: tuple[dict[int, int], dict[int, int]] = field(default_factory=lambda: ({}, {}))
    """Diffs gathered for the 1000 ms depth stream since its last push."""
    slow_first: int = 0
    candles: dict[str, Bucket] = field(default_factory=dict)
    minutes: deque[Bucket] = field(default_factory=lambda: deque(maxlen=1441))
    last_trade: Trade | None = None


class BinanceStreams:
    """Per-symbol counters and windows, and the frames of one tick."""

    def __init__(self, market: SimMarket) -> None:
        self.market = market
        self.state = {symbol: SymbolState() for symbol in market.sims}
        self.trade_id = 0
        self.agg_id = 0

    def fast(self, symbol: str, tick: SymbolTick, now: int, gap: bool) -> list[tuple[str, bytes]]:
        """The real-time and 100 ms frames of one tick (and its bookkeeping)."""
        state, low, text = self.state[symbol], symbol.lower(), self.market.text
        frames: list[tuple[str, bytes]] = []
        for trade in tick.trades:
            self.trade_id += 1
            self.agg_id += 1
            self._record(state, trade, now)
            price, qty = text(symbol, trade.price), text(symbol, trade.size, False)
            maker = trade.side.value == "sell"  # the buyer was the maker: a taker sold
            common = {"E": now, "s": symbol, "p": price, "q": qty}
            frames.append(
                (f"{low}@trade", _dump("trade", common, t=self.trade_id, T=now, m=maker, M=True))
            )
            agg = {"a": self.agg_id, "f": self.trade_id, "l": self.trade_id, "T": now}
            frames.append((f"{low}@aggTrade", _dump("aggTrade", common, **agg, m=maker, M=True)))
        if not tick.changes:
            return frames
        first = state.update_id + 1 + (3 if gap else 0)  # a gap: ids never sent
        state.update_id = first + tick.changes - 1
        if not state.slow_first:
            state.slow_first = first
        state.slow[0].update(tick.bids)
        state.slow[1].update(tick.asks)
        frames.append((f"{low}@depth@100ms", self._diff(symbol, tick.bids, tick.asks, first, now)))
        frames.extend(self._partials(symbol, "@100ms"))
        bids, asks = self.market.book(symbol)
        if bids and asks:
            top = {
                "u": state.update_id,
                "s": symbol,
                "b": text(symbol, bids[0][0]),
                "B": text(symbol, bids[0][1], False),
                "a": text(symbol, asks[0][0]),
                "A": text(symbol, asks[0][1], False),
            }
            frames.append((f"{low}@bookTicker", orjson.dumps(top)))
        return frames

    def slow(self, symbol: str, now: int) -> list[tuple[str, bytes]]:
        """The 1000 ms frames: diff depth, partial depth, klines, tickers, average price."""
        state, low = self.state[symbol], symbol.lower()
        frames: list[tuple[str, bytes]] = []
        if state.slow_first:
            bids, asks = state.slow
            frames.append((f"{low}@depth", self._diff(symbol, bids, asks, state.slow_first, now)))
            state.slow, state.slow_first = ({}, {}), 0
        frames.extend(self._partials(symbol, ""))
        frames.extend(self._partials(symbol, "@1000ms"))
        for interval, candle in state.candles.items():
            frames.append((f"{low}@kline_{interval}", self._kline(symbol, interval, candle, now)))
        day = self._window(state, WINDOWS_MS["1d"])
        frames.append((f"{low}@miniTicker", self._mini(symbol, day, now)))
        frames.append((f"{low}@ticker", self._ticker(symbol, "24hrTicker", day, now)))
        for name, span in WINDOWS_MS.items():
            window = self._window(state, span)
            frames.append(
                (f"{low}@ticker_{name}", self._ticker(symbol, f"{name}Ticker", window, now))
            )
        five = self._window(state, 300_000)
        average = self._avg(symbol, five.quote, five.volume)
        body = {"e": "avgPrice", "E": now, "s": symbol, "i": "5m", "w": average, "T": now}
        frames.append((f"{low}@avgPrice", orjson.dumps(body)))
        return frames

    def mini_array(self, now: int) -> bytes:
        """`!miniTicker@arr`: one miniTicker per symbol."""
        rows = [
            self._mini(symbol, self._window(state, WINDOWS_MS["1d"]), now)
            for symbol, state in self.state.items()
        ]
        return b"[" + b",".join(rows) + b"]"

    # -- building blocks --------------------------------------------------------------------

    def _record(self, state: SymbolState, trade: Trade, now: int) -> None:
        state.last_trade = trade
        minute = now - now % 60_000
        if not state.minutes or state.minutes[-1].start_ms != minute:
            state.minutes.append(Bucket(minute))
        state.minutes[-1].add(trade, self.trade_id)
        for interval, span in KLINE_MS.items():
            start = now - now % span
            candle = state.candles.get(interval)
            if candle is None or candle.start_ms != start:
                candle = state.candles[interval] = Bucket(start)
            candle.add(trade, self.trade_id)

    def _window(self, state: SymbolState, span_ms: int) -> Bucket:
        total = Bucket(0)
        if state.minutes:
            since = state.minutes[-1].start_ms + 60_000 - span_ms
            for bucket in state.minutes:
                if bucket.start_ms >= since:
                    total.merge(bucket)
        return total

    def _diff(
        self, symbol: str, bids: dict[int, int], asks: dict[int, int], first: int, now: int
    ) -> bytes:
        levels = self.market.levels_text
        body = {
            "e": "depthUpdate",
            "E": now,
            "s": symbol,
            "U": first,
            "u": self.state[symbol].update_id,
            "b": levels(symbol, tuple(sorted(bids.items(), reverse=True))),
            "a": levels(symbol, tuple(sorted(asks.items()))),
        }
        return orjson.dumps(body)

    def _partials(self, symbol: str, speed: str) -> list[tuple[str, bytes]]:
        bids, asks = self.market.book(symbol)
        levels, last = self.market.levels_text, self.state[symbol].update_id
        return [
            (
                f"{symbol.lower()}@depth{n}{speed}",
                orjson.dumps(
                    {
                        "lastUpdateId": last,
                        "bids": levels(symbol, bids[:n]),
                        "asks": levels(symbol, asks[:n]),
                    }
                ),
            )
            for n in (5, 10, 20)
        ]

    def _money(self, symbol: str, quote: int) -> str:
        inst = self.market.instrument(symbol)
        scale = inst.price_scale + inst.size_scale
        shift = FAKE_SCALE - scale
        value = quote * 10**shift if shift >= 0 else quote // 10**-shift
        return format_fixed(value, FAKE_SCALE)

    def _avg(self, symbol: str, quote: int, volume: int) -> str:
        if not volume:
            return format_fixed(0, FAKE_SCALE)
        inst = self.market.instrument(symbol)
        # quote / volume is at the price scale; keep FAKE_SCALE decimals
        raw = quote * 10 ** (FAKE_SCALE - inst.price_scale) // volume
        return format_fixed(raw, FAKE_SCALE)

    def _kline(self, symbol: str, interval: str, c: Bucket, now: int) -> bytes:
        text, span = self.market.text, KLINE_MS[interval]
        k = {
            "t": c.start_ms,
            "T": c.start_ms + span - 1,
            "s": symbol,
            "i": interval,
            "f": c.first_id,
            "L": c.last_id,
            "o": text(symbol, c.open),
            "c": text(symbol, c.close),
            "h": text(symbol, c.high),
            "l": text(symbol, c.low),
            "v": text(symbol, c.volume, False),
            "n": c.count,
            "x": now >= c.start_ms + span,
            "q": self._money(symbol, c.quote),
            "V": text(symbol, c.taker_buy, False),
            "Q": self._money(symbol, c.taker_buy_quote),
            "B": "0",
        }
        return orjson.dumps({"e": "kline", "E": now, "s": symbol, "k": k})

    def _mini(self, symbol: str, w: Bucket, now: int) -> bytes:
        text = self.market.text
        body = {
            "e": "24hrMiniTicker",
            "E": now,
            "s": symbol,
            "c": text(symbol, w.close),
            "o": text(symbol, w.open),
            "h": text(symbol, w.high),
            "l": text(symbol, w.low),
            "v": text(symbol, w.volume, False),
            "q": self._money(symbol, w.quote),
        }
        return orjson.dumps(body)

    def _ticker(self, symbol: str, event: str, w: Bucket, now: int) -> bytes:
        text, state = self.market.text, self.state[symbol]
        bids, asks = self.market.book(symbol)
        change = w.close - w.open
        percent = format_fixed(change * 100_000 // w.open, 3) if w.open else "0.000"
        last_qty = state.last_trade.size if state.last_trade else 0
        body: dict[str, object] = {
            "e": event,
            "E": now,
            "s": symbol,
            "p": text(symbol, change) if change >= 0 else "-" + text(symbol, -change),
            "P": percent,
            "w": self._avg(symbol, w.quote, w.volume),
            "o": text(symbol, w.open),
            "h": text(symbol, w.high),
            "l": text(symbol, w.low),
            "c": text(symbol, w.close),
            "v": text(symbol, w.volume, False),
            "q": self._money(symbol, w.quote),
            "O": now - 86_400_000 if event == "24hrTicker" else now - WINDOWS_MS[event[:-6]],
            "C": now,
            "F": w.first_id,
            "L": w.last_id,
            "n": w.count,
        }
        if event == "24hrTicker":
            body.update(
                x=text(symbol, w.open),
                Q=text(symbol, last_qty, False),
                b=text(symbol, bids[0][0]) if bids else "0.00000000",
                B=text(symbol, bids[0][1], False) if bids else "0.00000000",
                a=text(symbol, asks[0][0]) if asks else "0.00000000",
                A=text(symbol, asks[0][1], False) if asks else "0.00000000",
            )
        return orjson.dumps(body)


def _dump(event: str, common: dict[str, object], **fields: object) -> bytes:
    return orjson.dumps({"e": event, **common, **fields})


__all__ = ["KLINE_MS", "BinanceStreams", "valid_stream"]
