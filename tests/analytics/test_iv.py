import numpy as np
import pytest
from scipy.special import ndtri

from quantsaas.analytics.greeks import black76_price, bs_greeks, bs_price
from quantsaas.analytics.iv import implied_vol_black76, implied_vol_bs


def test_hull_round_trip() -> None:
    assert implied_vol_bs(4.759422392871532, "call", 42, 40, 0.5, 0.1) == pytest.approx(
        0.2, abs=1e-12
    )
    assert implied_vol_black76(1.1166414565589438, "put", 20, 20, 4 / 12, 0.09) == pytest.approx(
        0.25, abs=1e-12
    )


@pytest.mark.parametrize("kind", ["call", "put"])
def test_round_trip_grid_deltas_one_to_99_from_one_hour(kind: str) -> None:
    # strikes placed at call deltas 0.01..0.99, expiries 1 hour .. 2 years, vols 5 % .. 150 %
    mesh = np.meshgrid(
        np.linspace(0.01, 0.99, 50), [1 / 8760, 1 / 365, 0.1, 0.5, 2.0], [0.05, 0.3, 0.8, 1.5]
    )
    delta, t, sigma = (m.ravel() for m in mesh)
    s = 100.0
    k = s * np.exp(-ndtri(delta) * sigma * np.sqrt(t) + 0.5 * sigma**2 * t)
    assert bs_greeks("call", s, k, t, sigma).delta == pytest.approx(delta, abs=1e-12)
    price = bs_price(kind, s, k, t, sigma)
    iv = implied_vol_bs(price, kind, s, k, t)
    assert np.isfinite(iv).all()
    assert np.max(np.abs(bs_price(kind, s, k, t, iv) - price)) < 1e-10
    assert np.max(np.abs(iv - sigma) / sigma) < 1e-8


def test_round_trip_random_with_rates() -> None:
    rng = np.random.default_rng(5)
    n = 20_000
    f, k = rng.uniform(50, 150, n), rng.uniform(50, 150, n)
    t, sigma, r = rng.uniform(1 / 8760, 3, n), rng.uniform(0.05, 2.5, n), rng.uniform(-0.01, 0.1, n)
    kind = rng.random(n) < 0.5
    price = black76_price(kind, f, k, t, sigma, r)
    iv = implied_vol_black76(price, kind, f, k, t, r)
    solved = np.isfinite(iv)
    # only options worth less than one ulp above intrinsic have no representable solution
    assert solved.mean() > 0.97
    assert np.max(np.abs(black76_price(kind, f, k, t, iv, r) - price)[solved]) < 1e-10


def test_prices_outside_no_arbitrage_bounds_have_no_solution() -> None:
    s, k, t = 100.0, 90.0, 0.5
    iv = implied_vol_bs(
        [9.0, 10.0, 100.0, 120.0, 0.0, -1.0, 5.0],
        ["call", "call", "call", "call", "put", "put", "put"],
        s,
        k,
        t,
    )
    # below intrinsic, at intrinsic, at the forward, above, zero, negative
    assert np.isnan(iv[:6]).all()
    assert np.isfinite(iv[6])


def test_bad_input_gives_nan_without_warnings() -> None:
    iv = implied_vol_bs(
        [5.0, np.nan, 5.0, 5.0, 5.0],
        "call",
        [100, 100, 100, np.inf, -100],
        100,
        [-1.0, 1.0, 0.0, 1.0, 1.0],
    )
    assert np.isnan(iv).all()
    with pytest.raises(ValueError, match="'call' or 'put'"):
        implied_vol_bs(5.0, "future", 100, 100, 1.0)


def test_shapes_are_kept() -> None:
    price = bs_price("call", 100, [[90, 100], [110, 120]], 0.5, 0.4)
    iv = implied_vol_bs(price, "call", 100, [[90, 100], [110, 120]], 0.5)
    assert iv.shape == (2, 2)
    assert iv == pytest.approx(np.full((2, 2), 0.4), abs=1e-12)
