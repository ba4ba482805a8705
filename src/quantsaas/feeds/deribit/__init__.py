"""Deribit: public JSON-RPC over WebSocket (option chain, books with change_id, tickers)."""
