"""A quoting market maker on L2: every `every_ms` it quotes `size` at the best bid and the
best ask (post-only), cancelling and replacing quotes whose price is no longer the best; it
stops quoting the side that would take its position beyond `max_lots` lots of `size`.
No alpha: its result is the spread it earns minus adverse selection, plus maker rebates.

    quantsaas backtest examples/market_maker.py --data sim --symbols BTC/USD \
        --latency-ms 10 --fees=-0.5bp,7bp --param size=0.01
"""

from __future__ import annotations

from quantsaas.backtest import BookView, Order, Strategy
from quantsaas.model import BookDelta, BookSnapshot, Side

MS = 1_000_000


class QuotingMarketMaker(Strategy):
    params = {"every_ms": 100, "size": "0.01", "max_lots": 10}

    def on_start(self) -> None:
        self.next_quote: dict[tuple[str, str], int] = {}
        self.quotes: dict[tuple[tuple[str, str], Side], Order] = {}

    def on_book(self, book: BookView, event: BookDelta | BookSnapshot) -> None:
        instrument = book.instrument
        key = instrument.key
        now = self.now
        if now < self.next_quote.get(key, 0):
            return
        self.next_quote[key] = now + int(self.params["every_ms"]) * MS
        bid, ask = book.best_bid(), book.best_ask()
        if bid is None or ask is None:
            return
        size = self.size(instrument, self.params["size"])
        limit = size * int(self.params["max_lots"])
        position = self.position(instrument)
        for side, price, allowed in (
            (Side.BUY, bid[0], position + size <= limit),
            (Side.SELL, ask[0], position - size >= -limit),
        ):
            quote = self.quotes.get((key, side))
            if quote is not None and not quote.done:
                if quote.price == price and allowed:
                    continue
                self.cancel(quote)
            if allowed:
                self.quotes[(key, side)] = self.submit(instrument, side, size, price, True)
            else:
                self.quotes.pop((key, side), None)
