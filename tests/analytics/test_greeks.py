import datetime as dt
from typing import Any

import numpy as np
import pytest

from quantsaas.analytics.greeks import (
    NS_PER_DAY,
    black76_greeks,
    black76_price,
    bs_greeks,
    bs_price,
    option_greeks,
)
from quantsaas.analytics.smile import deribit_expiry_ns, parse_option_name


def test_hull_black_scholes_prices() -> None:
    assert bs_price("call", 42, 40, 0.5, 0.2, 0.1) == pytest.approx(4.759422392871532, abs=1e-10)
    assert bs_price("put", 42, 40, 0.5, 0.2, 0.1) == pytest.approx(0.808599372900095, abs=1e-10)


def test_hull_black_scholes_greeks() -> None:
    call = bs_greeks("call", 49, 50, 0.3846, 0.2, 0.05)
    expected = (
        0.5216016339715761,
        0.06554537725247868,
        0.12105242754243843,
        -0.011795588943961929,
        0.08906574098800946,
    )
    got = (call.delta, call.gamma, call.vega, call.theta, call.rho)
    assert got == pytest.approx(expected, abs=1e-10)
    put = bs_greeks("put", 49, 50, 0.3846, 0.2, 0.05)
    assert (put.delta, put.theta, put.rho) == pytest.approx(
        (-0.4783983660284239, -0.005076727869032515, -0.09957165877949381), abs=1e-10
    )


def test_black76_vectors() -> None:
    assert black76_price("put", 20, 20, 4 / 12, 0.25, 0.09) == pytest.approx(
        1.1166414565589438, abs=1e-10
    )
    g = black76_greeks(["call", "put"], 620, 600, 0.5, 0.2, 0.05)
    assert g.price[0] == pytest.approx(44.186853312106585, abs=1e-10)
    assert g.delta.tolist() == pytest.approx([0.6036106345492153, -0.37169927747911735], abs=1e-10)
    assert g.gamma[0] == pytest.approx(0.004239030328675466, abs=1e-12)
    assert g.vega[0] == pytest.approx(1.6294832583428493, abs=1e-10)
    assert g.theta.tolist() == pytest.approx([-0.0832337602774018, -0.08590584222816434], abs=1e-10)
    assert g.rho.tolist() == pytest.approx([-0.22093426656053294, -0.12340327535769965], abs=1e-10)


def grid() -> tuple[np.ndarray, ...]:
    k, t, sigma = np.meshgrid(np.linspace(50, 200, 16), [1 / 8760, 0.05, 0.5, 2.0], [0.1, 0.6, 1.5])
    return k.ravel(), t.ravel(), sigma.ravel()


def test_put_call_parity_with_rates_and_yield() -> None:
    k, t, sigma = grid()
    s, r, q = 100.0, 0.03, 0.01
    call, put = bs_price("call", s, k, t, sigma, r, q), bs_price("put", s, k, t, sigma, r, q)
    assert np.max(np.abs(call - put - (s * np.exp(-q * t) - k * np.exp(-r * t)))) < 1e-10
    c76, p76 = black76_price("call", s, k, t, sigma, r), black76_price("put", s, k, t, sigma, r)
    assert np.max(np.abs(c76 - p76 - np.exp(-r * t) * (s - k))) < 1e-10


@pytest.mark.parametrize("kind", ["call", "put"])
def test_greeks_match_finite_differences(kind: str) -> None:
    k, t, sigma = grid()
    keep = t > 0.01
    k, t, sigma = k[keep], t[keep], sigma[keep]
    s, r, q = 100.0, 0.03, 0.01
    g = bs_greeks(kind, s, k, t, sigma, r, q)

    def price(**bump: np.ndarray | float) -> np.ndarray:
        args: dict[str, np.ndarray | float] = {"s": s, "t": t, "sigma": sigma, "r": r}
        args.update(bump)
        return bs_price(kind, args["s"], k, args["t"], args["sigma"], args["r"], q)

    h = 1e-4
    delta = (price(s=s + h) - price(s=s - h)) / (2 * h)
    gamma = (price(s=s + h) - 2 * price() + price(s=s - h)) / h**2
    vega = (price(sigma=sigma + h) - price(sigma=sigma - h)) / (2 * h) / 100
    theta = -(price(t=t + h) - price(t=t - h)) / (2 * h) / 365
    rho = (price(r=r + h) - price(r=r - h)) / (2 * h) / 100
    assert np.max(np.abs(delta - g.delta)) < 1e-6
    assert np.max(np.abs(gamma - g.gamma)) < 1e-4
    assert np.max(np.abs(vega - g.vega)) < 1e-6
    assert np.max(np.abs(theta - g.theta)) < 1e-6
    assert np.max(np.abs(rho - g.rho)) < 1e-6


def test_invalid_elements_are_nan_without_warnings() -> None:
    prices = bs_price(
        ["call"] * 6,
        [100, np.nan, 100, 100, 100, -1],
        100,
        [1, 1, -0.1, 0, 1, 1],
        [0.5, 0.5, 0.5, 0.5, 0, 0.5],
    )
    assert np.isfinite(prices[0])
    assert np.isnan(prices[1:]).all()
    with pytest.raises(ValueError, match="'call' or 'put'"):
        bs_price("straddle", 100, 100, 1, 0.5)
    with pytest.raises(ValueError, match="'call' or 'put'"):
        bs_price(3, 100, 100, 1, 0.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="incompatible shapes"):
        bs_price("call", [1, 2], [1, 2, 3], 1, 0.5)
    assert bs_price([], 100, [], 1, 0.5).shape == (0,)


# analytics.md §3.2: ccxt PR #19908, Deribit BTC-27SEP24-40000-C at 2023-11-10
CCXT_NOW_NS = 1699593511632 * 1_000_000


def test_deribit_published_greeks() -> None:
    name = parse_option_name("BTC-27SEP24-40000-C")
    assert name.expiry_ns == deribit_expiry_ns(dt.date(2024, 9, 27))
    g = option_greeks(name.kind, 39165.86, name.strike, name.expiry_ns, CCXT_NOW_NS, 0.6086)
    assert g.delta == pytest.approx(0.59833, abs=1e-5)
    assert g.gamma == pytest.approx(0.00002, abs=5e-6)  # published rounded to 5 decimals
    assert g.vega == pytest.approx(142.30124, rel=3e-4)
    assert g.theta == pytest.approx(-13.4441, rel=3e-4)
    assert g.rho == pytest.approx(131.82621, rel=3e-4)
    # our own formula values from analytics.md, to 1e-5
    assert (g.delta, g.vega, g.theta, g.rho) == pytest.approx(
        (0.598321, 142.30204, -13.44330, 131.82846), abs=1e-5
    )
    assert g.coin_delta == pytest.approx(g.delta - g.price / 39165.86, abs=1e-15)


def test_deribit_lifetime_theta_under_one_day() -> None:
    # ETH-23JUL21-2300-C, 0.3875 days left: theta is -(price - intrinsic)
    expiry = deribit_expiry_ns(dt.date(2021, 7, 23))
    now = expiry - int(0.3875 * NS_PER_DAY)
    g = option_greeks("call", 2000.0, 2300.0, expiry, now, 0.8)
    assert g.theta == pytest.approx(-g.price, rel=1e-12)
    itm = option_greeks("put", 2400.0, 2500.0, expiry, now, 0.8)
    assert itm.theta == pytest.approx(-(itm.price - 100.0), rel=1e-12)
    a_day = option_greeks("call", 2000.0, 2300.0, expiry, expiry - 2 * NS_PER_DAY, 0.8)
    plain = bs_greeks("call", 2000.0, 2300.0, 2 / 365, 0.8)
    assert a_day.theta == pytest.approx(float(plain.theta), rel=1e-12)


def test_option_greeks_arrays() -> None:
    expiry = deribit_expiry_ns(dt.date(2024, 9, 27))
    g = option_greeks(["call", "put"], 39165.86, [40000, 40000], expiry, CCXT_NOW_NS, 0.6086)
    assert isinstance(g.delta, np.ndarray)
    assert g.delta[0] - g.delta[1] == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("call", 100.0, 100.0, 10, 20, 0.5), "expired"),
        (("call", 100.0, 100.0, 20, 10, 0.0), "iv must be positive"),
        (("call", 100.0, 100.0, 20, 10, float("nan")), "iv must be finite"),
        (("call", -5.0, 100.0, 20, 10, 0.5), "underlying_price must be positive"),
        (("call", 100.0, 100.0, 20.5, 10, 0.5), "integer nanoseconds"),
        (("fly", 100.0, 100.0, 20, 10, 0.5), "'call' or 'put'"),
    ],
)
def test_option_greeks_bad_input(args: tuple[Any, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        option_greeks(*args)
