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
    kraken_ws_url: str = "wss://ws.kraken.com/v2"
    kraken_symbols: Csv = ("BTC/USD", "ETH/USD")
    kraken_depth: Literal[10, 25, 100, 500, 1000] = 10
    kraken_verify_checksum: bool = True
    """Verify Kraken's CRC32 on every book message (a mismatch resyncs the book)."""
    deribit_ws_url: str = "wss://www.deribit.com/ws/api/v2"
    deribit_rest_url: str = "https://www.deribit.com"
    """Where the option chain is fetched (`public/get_instruments`) when the feed is built."""
    deribit_currencies: Csv = ("BTC", "ETH")
    deribit_instruments: Csv = ()
    """Explicit option names; empty: the nearest `deribit_max_options` of each currency's chain."""
    deribit_max_options: int = Field(default=20, ge=1, le=2000)
    deribit_heartbeat_s: int = Field(default=30, ge=10)
    consolidated_quote_equivalence: Csv = ()
    """Quote currencies treated as one in the consolidated market, e.g. `USD,USDT,USDC` (the
    first names the merged market). Empty by default: every quote is its own market."""
    consolidated_depth: int = Field(default=20, ge=1, le=1000)
    ca_file: Path | None = None
    """A CA certificate (PEM) trusted for venue connections besides the system's, e.g. the one a
    `fake-exchange --tls` prints."""
    feed_stall_s: float = Field(default=30.0, gt=0)
    """A venue connection without market data this long is re-established."""
    feed_liveness_s: float = Field(default=5.0, gt=0)
    """A venue connection with no frame at all (data, heartbeat, probe answer) this long is dead
    and re-established: found within seconds, apart from data age."""
    sim_stale_s: float = Field(default=10.0, gt=0)
    binance_stale_s: float = Field(default=10.0, gt=0)
    coinbase_stale_s: float = Field(default=15.0, gt=0)
    kraken_stale_s: float = Field(default=15.0, gt=0)
    deribit_stale_s: float = Field(default=120.0, gt=0)
    """Per venue: a book without data for longer is marked stale in /health and in its REST
    JSON (`stale`, `age_ms`), however alive the connection (option books are quiet)."""
    feed_backoff_initial_s: float = Field(default=0.5, gt=0)
    feed_backoff_cap_s: float = Field(default=30.0, gt=0)

    ws_queue_size: int = Field(default=4096, ge=16)
    """Messages buffered per WebSocket client before it starts losing messages."""
    ws_max_lag_s: float = Field(default=5.0, gt=0)
    """A client that lags this long is disconnected (close code 4008)."""
    ws_compression: bool = True
    """permessage-deflate on /ws for clients that offer it, without context takeover: each
    message is compressed once and the frame shared by every such client (wsframe.py)."""
    ws_max_message_bytes: int = Field(default=64 * 1024, ge=1024)
    """Inbound frames larger than this close the connection with 1009."""
    ws_max_inbound_per_s: int = Field(default=50, ge=1)
    ws_max_bad_messages: int = Field(default=20, ge=1)
    """Unparseable or invalid client messages tolerated per connection before close 1008."""
    http_max_head_bytes: int = Field(default=32 * 1024, ge=4096)
    """Request line plus headers of one HTTP request (431 beyond, api/intake.py)."""
    http_max_url_bytes: int = Field(default=8 * 1024, ge=1024)
    """Path plus query string of one HTTP request (414 beyond)."""
    max_book_depth: int = Field(default=1000, ge=1)
    max_trades_limit: int = Field(default=1000, ge=1)
    record: bool = True
    """Record every event (and raw venue frames) into `data_dir` while serving."""
    data_dir: Path = Path("data")
    """Root of the recorded history (Parquet + raw frames); queried by /api/v1/history."""
    record_flush_s: float = Field(default=1.0, gt=0, le=60)
    """Recorder flush interval: the most a crash can lose."""
    record_snapshot_s: float = Field(default=60.0, gt=0)
    """A checkpoint snapshot of every book at least this often."""
    record_raw: bool = True
    """Also record the raw frames of venue feeds (to re-normalise a day after a parser fix)."""
    retention_days: int = Field(default=0, ge=0)
    """Delete recorded days older than this; 0 keeps everything."""
    sim_warm_start_hours: float = Field(default=4.0, ge=0, le=48)
    """At the first start (no simulator history in `data_dir`), `serve` simulates this many past
    hours into history in the background (store/warmstart.py); 0 (`--no-warm-start`) never."""
    record_min_free_mb: int = Field(default=1024, ge=0)
    """The recorder stops writing while the data directory's filesystem has less free space
    than this (MB), so a full recording never takes the rest of the service down; 0: no floor."""
    retention_free_space: bool = False
    """Below `record_min_free_mb`, delete the oldest recorded days (never today) to make room."""
    history_max_range_days: float = Field(default=31.0, gt=0)
    """Largest time range one history query or download may span."""
    history_max_rows: int = Field(default=10_000, ge=1)
    """Most trades or candles in one page of a history query."""
    anonymous_requests: int = Field(default=60, ge=1)
    """Request units per `anonymous_window_s` for callers without credentials (per IP)."""
    anonymous_window_s: float = Field(default=60.0, gt=0)
    login_attempts: int = Field(default=10, ge=1)
    """Signup and login attempts per IP per `login_window_s` (the brute-force guard)."""
    login_window_s: float = Field(default=60.0, gt=0)
    signup_enabled: bool = True
    signup_tier: str = "free"
    bootstrap_admin: bool = True
    """On the first start (no users yet) create admin@localhost and print its password once."""
    forwarded_allow_ips: str = "127.0.0.1"
    """Proxies trusted for X-Forwarded-For/-Proto (comma-separated IPs or CIDRs, `*` for any):
    behind them the client IP (per-IP limits, audit) and https (Secure cookies) are the real
    ones. Never list addresses clients can reach directly."""
    log_format: Literal["text", "json"] = "text"
    """`json`: one JSON object per line (production); `text`: readable lines (a terminal)."""
    accounts_url: str = ""
    """Users, API keys and sessions: SQLAlchemy async URL (`sqlite+aiosqlite:///path`, or
    `postgresql+asyncpg://...`); empty: SQLite file `accounts.db` in `accounts_dir`."""
    accounts_dir: Path = Path("accounts")
    """Where the default SQLite accounts database lives: its own directory, not the recording
    (`data_dir`), so a disk filled by recordings cannot also stop logins and revocations."""
    tiers_file: Path | None = None
    """A tiers.toml replacing the packaged one (tiers and route weights)."""
    audit_retention_days: float = Field(default=365.0, ge=0)
    """Audit rows older than this are deleted (checked every minute); 0 keeps every row."""
    session_ttl_s: float = Field(default=86400.0 * 7, gt=0)
    """Dashboard sessions expire this long after login."""
    ws_ticket_ttl_s: float = Field(default=30.0, gt=0, le=300)
    """A single-use /ws ticket is valid this long."""
    anonymous_tier: str | None = None
    """Tier of callers without credentials; None: they are refused (the demo sets `demo`)."""
    allowed_origins: Csv = ()
    """Browser origins allowed to call the API with a session cookie; empty: same host only."""
    rate_limit_bus: str = "memory"
    """Where rate-limit counters live: `memory` (one process) or redis://host:port/db."""
    public_market_data_delay_s: float = Field(default=60.0, ge=0)
    """Delay of market data shown to the public (anonymous) dashboard."""
    web_dist: Path | None = Path(__file__).resolve().parents[2] / "web" / "dist"
    """The built dashboard served at `/` for browsers; None (or no index.html there) serves none."""

    @field_validator(
        "feeds",
        "symbols",
        "binance_symbols",
        "coinbase_symbols",
        "kraken_symbols",
        "deribit_currencies",
        "deribit_instruments",
        "consolidated_quote_equivalence",
        "allowed_origins",
        mode="before",
    )
    @classmethod
    def _split_csv(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @property
    def accounts_file(self) -> Path:
        """The default SQLite accounts file: `accounts_dir/accounts.db`; but an install from
        before accounts had their own directory keeps using its `data_dir/accounts.db` (until
        it is moved there: `legacy_accounts_file` says so) rather than silently starting empty."""
        own = self.accounts_dir / "accounts.db"
        legacy = self.data_dir / "accounts.db"
        if not own.exists() and legacy.exists():
            return legacy
        return own

    @property
    def legacy_accounts_file(self) -> bool:
        """The SQLite accounts database in use is the old one in the data directory."""
        return not self.accounts_url and self.accounts_file.parent == self.data_dir

    @property
    def accounts_database(self) -> str:
        """The accounts URL in effect (`accounts_url`, or SQLite at `accounts_file`)."""
        return self.accounts_url or f"sqlite+aiosqlite:///{self.accounts_file.resolve()}"
