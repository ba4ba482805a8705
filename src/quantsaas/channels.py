"""The engine's stream channels: names shared by the engine, its consumers and the API.

A topic is (channel, venue, symbol). Option tickers are published under their underlying:
topic (options, venue, BTC/USD). Derived channels are named by the consumer that serves them
(analytics/live.py, book/consolidated_live.py).
"""

TRADES = "trades"
BOOK = "book"
TICKER = "ticker"
OPTIONS = "options"
CHANNELS = (TRADES, BOOK, TICKER)
"""What the engine serves on its own (options are served once analytics registers them)."""
