"""Implied volatility: a vectorised, bracketed Newton solver for Black-76 and Black-Scholes.

The price is turned into an out-of-the-money option on the forward, normalised by the forward
(so 0 < target < 1 for calls, < K/F for puts). Newton runs on ln(price) against total volatility
w = sigma * sqrt(t), which is nearly linear in the wings, inside a bracket [lo, hi] that every
step narrows; a step leaving the bracket is replaced by bisection, so every element converges.

"No solution" is NaN: a price at or outside the no-arbitrage bounds (at most intrinsic, at least
the discounted forward for a call or discounted strike for a put), and any non-finite or
non-positive input, t <= 0 included. Never raises from numpy, never warns.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from quantsaas.analytics.greeks import FloatArray, KindLike, is_call, npdf
from quantsaas.analytics.normal import ndtr

MAX_ITERATIONS = 100
_W_TOL = 1e-13
_W_MAX = 50.0


def _otm_price(x: FloatArray, k: FloatArray, sign: FloatArray, w: FloatArray) -> FloatArray:
    """Normalised out-of-the-money price at total vol `w`; sign +1 for a call, -1 for a put:
    N(d1) - k N(d2) for a call, k N(-d2) - N(-d1) for a put."""
    d1 = x / w + 0.5 * w
    result: FloatArray = sign * (ndtr(sign * d1) - k * ndtr(sign * (d1 - w)))
    return result


def implied_vol_black76(
    price: ArrayLike, kind: KindLike, f: ArrayLike, k: ArrayLike, t: ArrayLike, r: ArrayLike = 0.0
) -> FloatArray:
    """Black-76 implied volatility (fraction per year), NaN where no solution exists."""
    call = is_call(kind)
    try:
        arrays = np.broadcast_arrays(
            call, *(np.asarray(v, dtype=np.float64) for v in (price, f, k, t, r))
        )
    except ValueError as exc:
        raise ValueError(f"option inputs have incompatible shapes: {exc}") from None
    c, p, f_, k_, t_, r_ = arrays
    c = c.astype(np.bool_)
    with np.errstate(all="ignore"):
        discount = np.exp(-r_ * t_)
        kk = k_ / f_
        # the out-of-the-money side: a put when K < F, a call otherwise (put-call parity)
        otm_call = kk >= 1.0
        intrinsic = discount * np.where(c, f_ - k_, k_ - f_)
        otm = np.where(c == otm_call, p, p - intrinsic)
        upper = discount * np.where(otm_call, f_, k_)
        target = otm / (discount * f_)
        finite = np.isfinite(p) & np.isfinite(f_) & np.isfinite(k_) & np.isfinite(t_)
        finite &= np.isfinite(r_)
        ok = finite & (f_ > 0) & (k_ > 0) & (t_ > 0) & (otm > 0) & (otm < upper)
    x = -np.log(np.where(ok, kk, 1.0))  # ln(F/K)
    target = np.where(ok, target, 0.5)
    kk = np.where(ok, kk, 1.0)
    w = _solve(np.where(ok, x, 0.0), kk, otm_call, target)
    result: FloatArray = np.where(ok, w / np.sqrt(np.where(ok, t_, 1.0)), np.nan)
    return result


def implied_vol_bs(
    price: ArrayLike,
    kind: KindLike,
    s: ArrayLike,
    k: ArrayLike,
    t: ArrayLike,
    r: ArrayLike = 0.0,
    q: ArrayLike = 0.0,
) -> FloatArray:
    """Black-Scholes(-Merton) implied volatility: Black-76 on the forward s * e^((r-q) t)."""
    with np.errstate(all="ignore"):
        t_ = np.asarray(t, dtype=np.float64)
        forward = np.asarray(s, dtype=np.float64) * np.exp(
            (np.asarray(r, dtype=np.float64) - np.asarray(q, dtype=np.float64)) * t_
        )
    return implied_vol_black76(price, kind, forward, k, t, r)


def _solve(x: FloatArray, k: FloatArray, call: NDArray[np.bool_], target: FloatArray) -> FloatArray:
    """Total vol w with _otm_price(w) == target, for 0 < target < upper (checked by caller).

    The price curve is convex below its inflection point w* = sqrt(2|x|) and concave above.
    A root above w* is found by Newton on the price from w*, which then approaches it
    monotonically from below; a root below w*, where the price falls off like exp(-x^2/2w^2),
    by Newton on -1/ln(price), nearly quadratic in w there, approaching from above.
    """
    shape = target.shape
    x, k, target = x.ravel(), k.ravel(), target.ravel()
    sign = np.where(call.ravel(), 1.0, -1.0)
    with np.errstate(all="ignore"):
        w_star = np.sqrt(2.0 * np.abs(x))
        lower = (w_star > 0) & (target < _otm_price(x, k, sign, w_star))
        lo = np.where(lower, 0.0, w_star)
        hi = np.where(lower, w_star, _W_MAX)
        w = np.where(lower | (w_star > 0), w_star, np.sqrt(2 * np.pi) * target)
        goal = np.where(lower, -1.0 / np.log(target), target)
        out = w.copy()
        # the elements still iterating; compacted once enough of them have converged
        idx = np.arange(target.size)
        settled = np.zeros(target.size, dtype=np.bool_)
        for _ in range(MAX_ITERATIONS):
            model = _otm_price(x, k, sign, w)
            log_model = np.log(model)
            value = np.where(lower, -1.0 / log_model, model)
            above = value > goal
            hi = np.where(above, w, hi)
            lo = np.where(above, lo, w)
            vega = npdf(x / w + 0.5 * w)
            slope = np.where(lower, vega / (model * log_model * log_model), vega)
            step = (value - goal) / slope
            newton = w - step
            done = (np.abs(step) <= _W_TOL * w) | (hi - lo <= _W_TOL * hi)
            inside = done | (np.isfinite(newton) & (newton > lo) & (newton < hi))
            w = np.where(inside, newton, 0.5 * (lo + hi))
            fresh = done & ~settled
            out[idx[fresh]] = w[fresh]
            settled |= done
            left = int(np.count_nonzero(~settled))
            if left == 0:
                break
            if left < 0.75 * idx.size:
                keep = ~settled
                idx, x, k, sign, goal, lower, lo, hi, w = (
                    np.compress(keep, a) for a in (idx, x, k, sign, goal, lower, lo, hi, w)
                )
                settled = np.zeros(idx.size, dtype=np.bool_)
        else:
            out[idx[~settled]] = w[~settled]
    return out.reshape(shape)
