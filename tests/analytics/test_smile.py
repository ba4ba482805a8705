import datetime as dt
import math

import pytest

from quantsaas.analytics.smile import (
    deribit_expiry_code,
    deribit_expiry_ns,
    parse_option_name,
    smile_summary,
)

EXPIRY = deribit_expiry_ns(dt.date(2024, 9, 27))
NOW = EXPIRY - 30 * 86_400_000_000_000


def test_option_names() -> None:
    name = parse_option_name("ETH-5JAN24-2250-P")
    assert (name.currency, name.strike, name.kind) == ("ETH", 2250.0, "put")
    assert name.expiry_ns == int(dt.datetime(2024, 1, 5, 8, tzinfo=dt.UTC).timestamp()) * 10**9
    assert parse_option_name("XRP_USDC-28JUN24-0d55-C").strike == 0.55
    assert deribit_expiry_code(EXPIRY) == "27SEP24"
    for bad in ("BTC-27SEP24-40000", "BTC-32JAN24-1-C", "BTC-1XYZ24-1-C", ""):
        with pytest.raises(ValueError):
            parse_option_name(bad)


def test_flat_smile_has_no_skew() -> None:
    summary = smile_summary(
        60_000, [40_000, 50_000, 60_000, 70_000, 90_000], [0.6] * 5, EXPIRY, NOW
    )
    assert summary.atm_iv == pytest.approx(0.6)
    assert summary.rr25 == pytest.approx(0.0, abs=1e-15)
    assert summary.bf25 == pytest.approx(0.0, abs=1e-15)


def test_skewed_smile() -> None:
    strikes = [40_000, 50_000, 60_000, 70_000, 90_000]
    ivs = [0.8, 0.7, 0.6, 0.55, 0.5]  # puts richer: negative risk reversal
    summary = smile_summary(60_000, strikes, ivs, EXPIRY, NOW)
    assert summary.atm_iv == pytest.approx(0.6)
    assert summary.rr25 < 0
    # a smile linear in delta: the butterfly vanishes, the RR is the slope across 0.5 delta
    linear = smile_summary(
        60_000, strikes, [0.6 + 0.2 * (d - 0.5) for d in summary.call_deltas], EXPIRY, NOW
    )
    assert linear.bf25 == pytest.approx(0.0, abs=0.01)


def test_no_extrapolation_and_bad_input() -> None:
    summary = smile_summary(60_000, [61_000, 62_000], [0.6, 0.61], EXPIRY, NOW)
    assert math.isnan(summary.atm_iv)
    with pytest.raises(ValueError, match="same length"):
        smile_summary(60_000, [1, 2], [0.5], EXPIRY, NOW)
    with pytest.raises(ValueError, match="forward"):
        smile_summary(float("nan"), [1], [0.5], EXPIRY, NOW)
    with pytest.raises(ValueError, match="after now"):
        smile_summary(60_000, [1], [0.5], NOW, EXPIRY)
