"""Black-Scholes and Black-76 prices and greeks, vectorised over numpy arrays.

Conventions (those of py_vollib, so published reference values compare directly): time `t` in
years, `sigma` and `r` as fractions; vega and rho per 1 % (one vol point, one rate point), theta
per calendar day (/365). Black-Scholes here is Black-Scholes-Merton with a continuous yield `q`
(0 by default); Black-76 discounts everything, including delta, by exp(-r t).

Bad input rule: every kernel works element by element and gives NaN where an element is outside
the model's domain (a non-finite value, spot/forward or strike <= 0, t <= 0, sigma <= 0). It never
raises from inside numpy and never warns; `kind` must be "call"/"put" strings or booleans
(`True` = call), anything else raises ValueError.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeAlias

import numpy as np
from numpy.typing import ArrayLike, NDArray

from quantsaas.analytics.normal import ndtr

FloatArray: TypeAlias = NDArray[np.float64]
KindLike: TypeAlias = (
    str | bool | Sequence[str] | Sequence[bool] | NDArray[np.bool_] | NDArray[np.str_]
)

DAYS_PER_YEAR = 365.0
_INV_SQRT_2PI = 0.3989422804014327


def is_call(kind: KindLike) -> NDArray[np.bool_]:
    """ "call"/"put" (or True/False) -> boolean array; anything else is a ValueError."""
    values = np.asarray(kind)
    if values.dtype == np.bool_:
        return values
    if values.size == 0:
        return np.zeros(values.shape, dtype=np.bool_)
    if values.dtype.kind not in "US":
        raise ValueError(f"option kind must be 'call' or 'put', not {kind!r}")
    lowered = np.char.lower(values.astype(str))
    calls, puts = lowered == "call", lowered == "put"
    if not np.all(calls | puts):
        bad = np.unique(values[~(calls | puts)])
        raise ValueError(f"option kind must be 'call' or 'put', not {bad.tolist()!r}")
    result: NDArray[np.bool_] = np.asarray(calls, dtype=np.bool_)
    return result


def npdf(x: FloatArray) -> FloatArray:
    """Standard normal density."""
    result: FloatArray = _INV_SQRT_2PI * np.exp(-0.5 * x * x)
    return result


@dataclass(frozen=True, slots=True)
class Greeks:
    """Price and greeks; vega and rho per 1 %, theta per calendar day."""

    price: FloatArray
    delta: FloatArray
    gamma: FloatArray
    vega: FloatArray
    theta: FloatArray
    rho: FloatArray


@dataclass(frozen=True, slots=True)
class _Inputs:
    call: NDArray[np.bool_]
    s: FloatArray
    k: FloatArray
    t: FloatArray
    sigma: FloatArray
    r: FloatArray
    q: FloatArray
    bad: NDArray[np.bool_]


def _inputs(
    kind: KindLike,
    s: ArrayLike,
    k: ArrayLike,
    t: ArrayLike,
    sigma: ArrayLike,
    r: ArrayLike,
    q: ArrayLike,
) -> _Inputs:
    call = is_call(kind)
    try:
        arrays = np.broadcast_arrays(
            call, *(np.asarray(v, dtype=np.float64) for v in (s, k, t, sigma, r, q))
        )
    except ValueError as exc:
        raise ValueError(f"option inputs have incompatible shapes: {exc}") from None
    c, s_, k_, t_, sig, r_, q_ = arrays
    with np.errstate(invalid="ignore"):
        finite = np.isfinite(s_) & np.isfinite(k_) & np.isfinite(t_) & np.isfinite(sig)
        finite &= np.isfinite(r_) & np.isfinite(q_)
        bad = ~finite | (s_ <= 0) | (k_ <= 0) | (t_ <= 0) | (sig <= 0)
    if not bad.any():
        return _Inputs(c.astype(np.bool_), s_, k_, t_, sig, r_, q_, bad)
    one = np.ones_like(s_)
    # invalid elements are computed on harmless stand-ins and set to NaN at the end
    return _Inputs(
        c.astype(np.bool_),
        np.where(bad, one, s_),
        np.where(bad, one, k_),
        np.where(bad, one, t_),
        np.where(bad, one, sig),
        np.where(bad, 0.0, r_),
        np.where(bad, 0.0, q_),
        bad,
    )


def _nan_where(bad: NDArray[np.bool_], *values: FloatArray) -> list[FloatArray]:
    if not bad.any():
        return list(values)
    return [np.where(bad, np.nan, v) for v in values]


def bs_price(
    kind: KindLike,
    s: ArrayLike,
    k: ArrayLike,
    t: ArrayLike,
    sigma: ArrayLike,
    r: ArrayLike = 0.0,
    q: ArrayLike = 0.0,
) -> FloatArray:
    """Black-Scholes-Merton price of European calls/puts on a spot `s` with yield `q`."""
    return bs_greeks(kind, s, k, t, sigma, r, q).price


def bs_greeks(
    kind: KindLike,
    s: ArrayLike,
    k: ArrayLike,
    t: ArrayLike,
    sigma: ArrayLike,
    r: ArrayLike = 0.0,
    q: ArrayLike = 0.0,
) -> Greeks:
    """Black-Scholes-Merton price, delta, gamma, vega, theta and rho (spot-style)."""
    x = _inputs(kind, s, k, t, sigma, r, q)
    sqrt_t = np.sqrt(x.t)
    vol_t = x.sigma * sqrt_t
    d1 = (np.log(x.s / x.k) + (x.r - x.q + 0.5 * x.sigma * x.sigma) * x.t) / vol_t
    d2 = d1 - vol_t
    sign = np.where(x.call, 1.0, -1.0)
    has_r, has_q = bool(x.r.any()), bool(x.q.any())
    df_r = np.exp(-x.r * x.t) if has_r else 1.0
    df_q = np.exp(-x.q * x.t) if has_q else 1.0
    n_d1, n_d2 = ndtr(sign * d1), ndtr(sign * d2)
    pdf = npdf(d1)
    s_n_d1, k_n_d2 = x.s * df_q * n_d1, x.k * df_r * n_d2
    price = sign * (s_n_d1 - k_n_d2)
    delta = sign * df_q * n_d1
    s_pdf = x.s * df_q * pdf
    gamma = s_pdf / (x.s * x.s * vol_t)
    vega = s_pdf * sqrt_t / 100.0
    theta = -s_pdf * x.sigma / (2.0 * sqrt_t)
    if has_r:
        theta = theta - sign * x.r * k_n_d2
    if has_q:
        theta = theta + sign * x.q * s_n_d1
    theta = theta / DAYS_PER_YEAR
    rho = sign * x.t * k_n_d2 / 100.0
    return Greeks(*_nan_where(x.bad, price, delta, gamma, vega, theta, rho))


def black76_price(
    kind: KindLike, f: ArrayLike, k: ArrayLike, t: ArrayLike, sigma: ArrayLike, r: ArrayLike = 0.0
) -> FloatArray:
    """Black-76 price of European calls/puts on a forward `f`, discounted at `r`."""
    return black76_greeks(kind, f, k, t, sigma, r).price


def black76_greeks(
    kind: KindLike, f: ArrayLike, k: ArrayLike, t: ArrayLike, sigma: ArrayLike, r: ArrayLike = 0.0
) -> Greeks:
    """Black-76 price and greeks w.r.t. the forward; rho is -t * price (per 1 %)."""
    x = _inputs(kind, f, k, t, sigma, r, 0.0)
    sqrt_t = np.sqrt(x.t)
    vol_t = x.sigma * sqrt_t
    d1 = (np.log(x.s / x.k) + 0.5 * vol_t * vol_t) / vol_t
    d2 = d1 - vol_t
    sign = np.where(x.call, 1.0, -1.0)
    df = np.exp(-x.r * x.t)
    n_d1, n_d2 = ndtr(sign * d1), ndtr(sign * d2)
    pdf = npdf(d1)
    price = df * sign * (x.s * n_d1 - x.k * n_d2)
    delta = df * sign * n_d1
    gamma = df * pdf / (x.s * vol_t)
    vega = df * x.s * pdf * sqrt_t / 100.0
    theta = (-df * x.s * pdf * x.sigma / (2.0 * sqrt_t) + x.r * price) / DAYS_PER_YEAR
    rho = -x.t * price / 100.0
    return Greeks(*_nan_where(x.bad, price, delta, gamma, vega, theta, rho))


NS_PER_DAY = 86_400_000_000_000
NS_PER_YEAR = 365 * NS_PER_DAY


@dataclass(frozen=True, slots=True)
class VenueGreeks:
    """Greeks in Deribit's units: USD delta and gamma, vega USD per vol point, theta USD per
    calendar day (lifetime theta under one day), rho USD per 1 %; `price` in USD and
    `coin_delta`, the premium-adjusted delta Δ - V/S of a coin-settled option."""

    price: float | FloatArray
    delta: float | FloatArray
    gamma: float | FloatArray
    vega: float | FloatArray
    theta: float | FloatArray
    rho: float | FloatArray
    coin_delta: float | FloatArray


def _plain(value: FloatArray) -> float | FloatArray:
    return float(value) if value.ndim == 0 else value


def option_greeks(
    kind: KindLike,
    underlying_price: ArrayLike,
    strike: ArrayLike,
    expiry_ns: ArrayLike,
    now_ns: ArrayLike,
    iv: ArrayLike,
    rate: ArrayLike = 0.0,
) -> VenueGreeks:
    """Greeks as Deribit publishes them on its option tickers.

    Plain Black-Scholes on `underlying_price` (which already holds the basis), `iv` a fraction,
    time = (expiry - now) ns over a 365-day year, where `expiry_ns` is the 08:00 UTC expiry
    instant (`deribit_expiry_ns`). Under one day to expiry theta is the lifetime theta
    -(price - intrinsic). Scalars in, floats out; arrays in, arrays out. Expired options, iv <= 0,
    prices <= 0 or non-finite inputs raise ValueError naming the problem.
    """
    call = is_call(kind)
    s, k, iv_, r = (np.asarray(v, dtype=np.float64) for v in (underlying_price, strike, iv, rate))
    expiry, now = np.asarray(expiry_ns), np.asarray(now_ns)
    if expiry.dtype.kind not in "iu" or now.dtype.kind not in "iu":
        raise ValueError("expiry_ns and now_ns must be integer nanoseconds")
    for name, value in (("underlying_price", s), ("strike", k), ("iv", iv_), ("rate", r)):
        if not np.all(np.isfinite(value)):
            raise ValueError(f"{name} must be finite")
    for name, value in (("underlying_price", s), ("strike", k), ("iv", iv_)):
        if np.any(value <= 0):
            raise ValueError(f"{name} must be positive")
    left_ns = expiry.astype(np.int64) - now.astype(np.int64)
    if np.any(left_ns <= 0):
        raise ValueError("option has expired: expiry_ns must be after now_ns")
    t = left_ns / NS_PER_YEAR
    g = bs_greeks(call, s, k, t, iv_, r)
    intrinsic = np.where(call, np.maximum(s - k, 0.0), np.maximum(k - s, 0.0))
    theta = np.where(left_ns < NS_PER_DAY, -(g.price - intrinsic), g.theta)
    coin_delta = g.delta - g.price / s
    return VenueGreeks(
        *(
            _plain(np.asarray(v))
            for v in (g.price, g.delta, g.gamma, g.vega, theta, g.rho, coin_delta)
        )
    )
