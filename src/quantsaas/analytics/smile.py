"""Per-expiry volatility smile summaries and Deribit-style option names and expiries.

For one expiry with forward F and time t, given (strike, implied vol) points:
* ATM vol: the smile linearly interpolated in log-moneyness ln(K/F) at 0;
* 25-delta risk reversal RR = iv(25-delta call) - iv(25-delta put) and butterfly
  BF = (iv(25-delta call) + iv(25-delta put)) / 2 - ATM vol, where deltas are undiscounted
  forward deltas N(d1) computed with each strike's own vol and the smile is interpolated
  linearly in delta (the 25-delta put is the point of call delta 0.75).
Nothing is extrapolated: a summary outside the quoted strikes is NaN (None in JSON).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr

from quantsaas.analytics.greeks import NS_PER_YEAR

_NAME = re.compile(r"^([A-Z0-9_]+)-(\d{1,2})([A-Z]{3})(\d{2})-(\d+(?:D\d+)?)-([CP])$")
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
EXPIRY_HOUR_UTC = 8


@dataclass(frozen=True, slots=True)
class OptionName:
    currency: str
    expiry_ns: int
    strike: float
    kind: str


def deribit_expiry_ns(day: dt.date) -> int:
    """Deribit options expire at 08:00 UTC on their expiry date."""
    moment = dt.datetime(day.year, day.month, day.day, EXPIRY_HOUR_UTC, tzinfo=dt.UTC)
    return int(moment.timestamp()) * 1_000_000_000


def deribit_expiry_code(expiry_ns: int) -> str:
    """08:00 UTC expiry instant -> `27SEP24`."""
    day = dt.datetime.fromtimestamp(expiry_ns // 1_000_000_000, tz=dt.UTC).date()
    return f"{day.day}{_MONTHS[day.month - 1]}{day.year % 100:02d}"


def parse_option_name(name: str) -> OptionName:
    """`BTC-27SEP24-40000-C` -> currency, 08:00 UTC expiry, strike, "call"/"put"."""
    match = _NAME.match(name.strip().upper())
    if match is None:
        raise ValueError(f"not an option name like BTC-27SEP24-40000-C: {name!r}")
    currency, day, month, year, strike, letter = match.groups()
    if month not in _MONTHS:
        raise ValueError(f"unknown month {month!r} in {name!r}")
    try:
        date = dt.date(2000 + int(year), _MONTHS.index(month) + 1, int(day))
    except ValueError as exc:
        raise ValueError(f"invalid expiry date in {name!r}: {exc}") from None
    return OptionName(
        currency,
        deribit_expiry_ns(date),
        float(strike.replace("D", ".")),
        "call" if letter == "C" else "put",
    )


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
