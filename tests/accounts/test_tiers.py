"""Tiers and route weights from tiers.toml."""

from __future__ import annotations

from pathlib import Path

import pytest

from quantsaas.accounts.tiers import DEFAULT_WEIGHT, Tier, load_tiers, load_weights
from quantsaas.errors import ConfigError

VALID = """
[tiers.basic]
symbols = ["BTC/USD"]
book_interval_ms = 500
ws_connections = 1
ws_subscriptions = 3
ws_inbound_per_s = 2
history_days = 0.5
requests = 10
window_s = 1
api_keys = 1
"""


def test_default_tiers_match_the_contract() -> None:
    tiers = load_tiers()
    assert list(tiers) == ["demo", "free", "pro", "enterprise"]
    assert tiers["free"] == Tier(
        name="free",
        venues=None,
        symbols=("BTC/USD", "ETH/USD"),
        channels=("trades", "ticker", "book", "candles", "history"),
        book_interval_ms=1000,
        ws_connections=1,
        ws_subscriptions=20,
        ws_inbound_per_s=5,
        history_days=1.0,
        requests=60,
        window_s=60.0,
        api_keys=2,
    )
    demo = tiers["demo"]
    assert demo.venues == ("sim",) and demo.symbols is None and demo.channels is None
    for name in ("pro", "enterprise"):
        tier = tiers[name]
        assert tier.channels is None and tier.symbols is None and tier.venues is None
        assert tier.book_interval_ms == 0
        assert tier.requests > tiers["free"].requests
        assert tier.history_days > tiers["free"].history_days
        assert tier.api_keys > tiers["free"].api_keys
    assert tiers["enterprise"].requests > tiers["pro"].requests


def test_allows_checks_venue_symbol_and_channel() -> None:
    tiers = load_tiers()
    assert tiers["free"].allows("kraken", "BTC/USD", "book")
    assert not tiers["free"].allows("kraken", "SOL/USD", "book")
    assert not tiers["free"].allows("kraken", "BTC/USD", "vpin")
    assert tiers["demo"].allows("sim", "SOL/USD", "vpin")
    assert not tiers["demo"].allows("kraken", "BTC/USD", "trades")
    assert tiers["enterprise"].allows("anything", "X/Y", "greeks")


def test_default_weights() -> None:
    weights = load_weights()
    assert weights["/api/v1/history/trades/{venue}/{symbol}"] == 5
    assert all(route.startswith("/") and weight >= 1 for route, weight in weights.items())
    assert weights.get("/api/v1/instruments", DEFAULT_WEIGHT) == 1


def test_an_override_file_replaces_the_default(tmp_path: Path) -> None:
    path = tmp_path / "tiers.toml"
    path.write_text(VALID + '[weights]\n"/x" = 3\n')
    tiers = load_tiers(path)
    assert list(tiers) == ["basic"]
    assert tiers["basic"].history_days == 0.5 and tiers["basic"].window_s == 1.0
    assert isinstance(tiers["basic"].window_s, float)
    assert tiers["basic"].venues is None and tiers["basic"].symbols == ("BTC/USD",)
    assert dict(load_weights(path)) == {"/x": 3}
    path.write_text(VALID)
    assert dict(load_weights(path)) == {}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("api_keys = 1", "api_keys = -1"), "api_keys"),
        (("api_keys = 1", "api_keys = true"), "api_keys"),
        (("api_keys = 1", 'api_keys = "1"'), "api_keys"),
        (("api_keys = 1", "api_keys = 1.5"), "api_keys"),
        (("api_keys = 1\n", ""), "api_keys is missing"),
        (("requests = 10", "requests = 0"), "requests must be > 0"),
        (("window_s = 1", "window_s = 0"), "window_s"),
        (('symbols = ["BTC/USD"]', "symbols = [1]"), "symbols"),
        (('symbols = ["BTC/USD"]', 'symbols = "BTC/USD"'), "symbols"),
        (('symbols = ["BTC/USD"]', 'symbols = [""]'), "symbols"),
        (("api_keys = 1", "api_keys = 1\nfoo = 2"), "unknown setting"),
        (("[tiers.basic]", "[other]"), "no [tiers"),
        (("[tiers.basic]", "[tiers.basic"), "tiers file"),
    ],
)
def test_invalid_files_raise_config_error(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    path = tmp_path / "tiers.toml"
    path.write_text(VALID.replace(*change))
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        load_tiers(path)


@pytest.mark.parametrize("weights", ['"/x" = 0', '"/x" = "5"', '"x" = 2', '"/x" = true'])
def test_invalid_weights_raise_config_error(tmp_path: Path, weights: str) -> None:
    path = tmp_path / "tiers.toml"
    path.write_text(VALID + "[weights]\n" + weights + "\n")
    with pytest.raises(ConfigError):
        load_weights(path)


def test_a_missing_file_raises_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nope.toml"):
        load_tiers(tmp_path / "nope.toml")
