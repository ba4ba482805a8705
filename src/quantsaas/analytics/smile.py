"""Per-expiry volatility smile summaries (option names and expiries: `option_names`).

For one expiry with forward F and time t, given (strike, implied vol) points:
* ATM vol: the smile linearly interpolated in log-moneyness ln(K/F) at 0;
* 25-delta risk reversal RR = iv(25-delta call) - iv(25-delta put) and butterfly
  BF = (iv(25-delta call) + iv(25-delta put)) / 2 - ATM vol, where deltas are undiscounted
  forward deltas N(d1) computed with each strike's own vol and the smile is interpolated
  linearly in delta (the 25-delta put is the point of call delta 0.75).
Nothing is extrapolated: a summary outside the quoted strikes is NaN (None in JSON).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from quantsaas import option_names
from quantsaas.analytics.greeks import NS_PER_YEAR
from quantsaas.analytics.normal import ndtr
from quantsaas.errors import ProtocolError

deribit_expiry_ns = option_names.expiry_ns
deribit_expiry_code = option_names.expiry_code


@dataclass(frozen=True, slots=True)
class OptionName:
    currency: str
    expiry_ns: int
    strike: float
    kind: str


def parse_option_name(name: str) -> OptionName:
    """`BTC-27SEP24-40000-C` -> currency, 08:00 UTC expiry, strike (as a float, for the smile
    maths), "call"/"put". The name is read by `option_names`; a bad one raises ValueError."""
    try:
        parsed = option_names.parse(name)
    except ProtocolError as exc:
        raise ValueError(str(exc)) from None
    return OptionName(parsed.currency, parsed.expiry_ns, float(parsed.strike), parsed.kind)


@dataclass(frozen=True, slots=True)
class SmileSummary:
    expiry_ns: int
    years: float
    forward: float
    atm_iv: float
    rr25: float
    bf25: float
    strikes: tuple[float, ...]
    ivs: tuple[float, ...]
    call_deltas: tuple[float, ...]


def smile_summary(
    forward: float, strikes: Sequence[float], ivs: Sequence[float], expiry_ns: int, now_ns: int
) -> SmileSummary:
    """ATM vol, 25-delta risk reversal and butterfly of one expiry's smile (vols as fractions)."""
    k = np.asarray(strikes, dtype=np.float64)
    v = np.asarray(ivs, dtype=np.float64)
    if k.shape != v.shape or k.ndim != 1:
        raise ValueError("strikes and ivs must be one-dimensional and of the same length")
    if not (math.isfinite(forward) and forward > 0):
        raise ValueError(f"forward must be a positive finite number, not {forward!r}")
    years = (expiry_ns - now_ns) / NS_PER_YEAR
    if years <= 0:
        raise ValueError("expiry must be after now")
    keep = np.isfinite(k) & np.isfinite(v) & (k > 0) & (v > 0)
    order = np.argsort(k[keep])
    k, v = k[keep][order], v[keep][order]
    moneyness = np.log(k / forward)
    w = v * math.sqrt(years)
    deltas = ndtr(-moneyness / w + 0.5 * w) if k.size else np.empty(0)
    atm = _interp(0.0, moneyness, v)
    by_delta = np.argsort(deltas)
    call25 = _interp(0.25, deltas[by_delta], v[by_delta])
    put25 = _interp(0.75, deltas[by_delta], v[by_delta])
    return SmileSummary(
        expiry_ns,
        years,
        forward,
        atm,
        call25 - put25,
        (call25 + put25) / 2 - atm,
        tuple(k.tolist()),
        tuple(v.tolist()),
        tuple(np.asarray(deltas).tolist()),
    )


def _interp(at: float, xs: np.ndarray, ys: np.ndarray) -> float:
    if xs.size == 0 or at < xs[0] or at > xs[-1]:
        return math.nan
    return float(np.interp(at, xs, ys))
