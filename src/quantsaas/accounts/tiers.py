"""Service tiers: what a user of each tier may see and how much (tiers.toml, package data)."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

from quantsaas.errors import ConfigError

DEFAULT_WEIGHT = 1
_LISTS = ("venues", "symbols", "channels")
_INTS = (
    "book_interval_ms",
    "ws_connections",
    "ws_subscriptions",
    "ws_inbound_per_s",
    "requests",
    "api_keys",
)
_FLOATS = ("history_days", "window_s")
_POSITIVE = ("ws_connections", "ws_subscriptions", "ws_inbound_per_s", "requests", "window_s")


@dataclass(frozen=True)
class Tier:
    """Limits and entitlements of one tier; a None list means every venue/symbol/channel."""

    name: str
    venues: tuple[str, ...] | None
    symbols: tuple[str, ...] | None
    channels: tuple[str, ...] | None
    book_interval_ms: int
    ws_connections: int
    ws_subscriptions: int
    ws_inbound_per_s: int
    history_days: float
    requests: int
    window_s: float
    api_keys: int

    def allows(self, venue: str, symbol: str, channel: str) -> bool:
        """May this tier see `channel` data of `symbol` (BASE/QUOTE) on `venue`?"""
        return (
            (self.venues is None or venue in self.venues)
            and (self.symbols is None or symbol in self.symbols)
            and (self.channels is None or channel in self.channels)
        )


def _read(path: Path | None) -> dict[str, Any]:
    try:
        if path is None:
            text = resources.files(__package__).joinpath("tiers.toml").read_text("utf-8")
        else:
            text = path.read_text("utf-8")
        return tomllib.loads(text)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"tiers file {path or 'tiers.toml'}: {exc}") from None


def _tier(name: str, table: object) -> Tier:
    if not isinstance(table, dict):
        raise ConfigError(f"tier {name!r}: expected a table")
    known = {field.name for field in fields(Tier)} - {"name"}
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigError(f"tier {name!r}: unknown setting(s) {unknown}")
    values: dict[str, Any] = {"name": name}
    for key in _LISTS:
        raw = table.get(key)
        if raw is not None and not (
            isinstance(raw, list) and all(isinstance(item, str) and item for item in raw)
        ):
            raise ConfigError(f"tier {name!r}: {key} must be a list of names")
        values[key] = None if raw is None else tuple(raw)
    for key in (*_INTS, *_FLOATS):
        if key not in table:
            raise ConfigError(f"tier {name!r}: {key} is missing")
        raw = table[key]
        number_ok = isinstance(raw, int) or (key in _FLOATS and isinstance(raw, float))
        if isinstance(raw, bool) or not number_ok or raw < 0:
            raise ConfigError(f"tier {name!r}: {key} must be a number >= 0, not {raw!r}")
        if key in _POSITIVE and raw <= 0:
            raise ConfigError(f"tier {name!r}: {key} must be > 0")
        values[key] = float(raw) if key in _FLOATS else raw
    return Tier(**values)


def load_tiers(path: Path | None = None) -> Mapping[str, Tier]:
    """The tiers of `path` (default: the packaged tiers.toml), by name; ConfigError if invalid."""
    tables = _read(path).get("tiers")
    if not isinstance(tables, dict) or not tables:
        raise ConfigError(f"tiers file {path or 'tiers.toml'}: no [tiers.<name>] table")
    return MappingProxyType({name: _tier(name, table) for name, table in tables.items()})


def load_weights(path: Path | None = None) -> Mapping[str, int]:
    """Request cost of route path templates (`[weights]`); routes not listed cost DEFAULT_WEIGHT."""
    table = _read(path).get("weights", {})
    if not isinstance(table, dict):
        raise ConfigError("tiers file: [weights] must be a table")
    for route, weight in table.items():
        if not route.startswith("/") or isinstance(weight, bool) or not isinstance(weight, int):
            raise ConfigError(f'weight {route!r} = {weight!r}: expected "/path" = integer')
        if weight < 1:
            raise ConfigError(f"weight {route!r} must be >= 1")
    return MappingProxyType(dict(table))
