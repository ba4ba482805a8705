"""Analytics on the live streams and on history: candles, VWAP, OFI, VPIN, option greeks."""
