"""Settings from the environment (prefix QUANTSAAS_) or a .env file; the CLI overrides them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, TypeAlias

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

Csv: TypeAlias = Annotated[tuple[str, ...], NoDecode]
"""Comma-separated in the environment (`QUANTSAAS_SYMBOLS=BTC/USD,ETH/USD`), not JSON."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="QUANTSAAS_", env_file=".env", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    feeds: Csv = ("sim",)
    symbols: Csv = ()
    """Empty means every symbol the feed offers."""
    sim_rate: float = Field(default=50.0, gt=0)
    """Simulator order-book events per second per symbol."""
    sim_seed: int = 7
    sim_vol: float = Field(default=0.6, gt=0)
    """Annualised volatility of the simulated price paths."""

    binance_ws_url: str = "wss://stream.binance.com:9443"
    binance_rest_url: str = "https://api.binance.com"
    binance_symbols: Csv = ("BTC/USDT", "ETH/USDT")
    binance_depth_limit: int = Field(default=1000, ge=5, le=5000)
    coinbase_api: Literal["exchange", "advanced"] = "exchange"
    """Which Coinbase feed: the Exchange ws-feed or Advanced Trade."""
    coinbase_ws_url: str | None = None
    """None: the chosen API's public endpoint."""
    coinbase_symbols: Csv = ("BTC/USD", "ETH/USD")
    feed_stall_s: float = Field(default=30.0, gt=0)
    """A venue connection without market data this long is re-established."""
    feed_backoff_initial_s: float = Field(default=0.5, gt=0)
    feed_backoff_cap_s: float = Field(default=30.0, gt=0)

    ws_queue_size: int = Field(default=4096, ge=16)
    """Messages buffered per WebSocket client before it starts losing messages."""
    ws_max_lag_s: float = Field(default=5.0, gt=0)
    """A client that lags this long is disconnected (close code 4008)."""
    ws_max_message_bytes: int = Field(default=64 * 1024, ge=1024)
    """Inbound frames larger than this close the connection with 1009."""
    ws_max_inbound_per_s: int = Field(default=50, ge=1)
    ws_max_bad_messages: int = Field(default=20, ge=1)
    """Unparseable or invalid client messages tolerated per connection before close 1008."""
    max_book_depth: int = Field(default=1000, ge=1)
    max_trades_limit: int = Field(default=1000, ge=1)
    web_dist: Path | None = Path(__file__).resolve().parents[2] / "web" / "dist"
    """The built dashboard served at `/` for browsers; None (or no index.html there) serves none."""

    @field_validator("feeds", "symbols", "binance_symbols", "coinbase_symbols", mode="before")
    @classmethod
    def _split_csv(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value
