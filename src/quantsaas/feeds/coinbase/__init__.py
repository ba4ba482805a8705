"""Coinbase: the Exchange feed and the Advanced Trade feed (one `CoinbaseFeed`)."""
