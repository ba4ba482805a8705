"""Kraken Spot: WebSocket v2 parser, checksummed book state (v1 for recorded files), the feed."""
