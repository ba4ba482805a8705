"""Binance Spot: wire parsers, the official local-book algorithm, the feed."""
