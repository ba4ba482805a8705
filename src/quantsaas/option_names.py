"""Deribit-style option names, parsed in this one place: `BTC-24SEP21-8000-P`, linear
`MATIC_USDC-9MAR24-1d02-C` (`d` is the strike's decimal point).

Pure and model-level, so both the Deribit feed (option Instruments) and analytics (expiries and
strikes of a smile) use it, and the simulator writes its names with `expiry_code`. Deribit
options expire at 08:00 UTC on their date. Strikes stay exact (`Decimal`). A bad name raises
`ProtocolError` quoting at most ~100 characters of it.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal

from quantsaas.errors import ProtocolError, quote

MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
EXPIRY_HOUR_UTC = 8
MAX_NAME = 64
"""Longer text is not an option name (and is not worth a regular expression)."""
_NAME = re.compile(r"([A-Z0-9]+)(?:_([A-Z0-9]+))?-(\d{1,2})([A-Z]{3})(\d{2})-(\d+(?:d\d+)?)-([CP])")


@dataclass(frozen=True, slots=True)
class OptionName:
    currency: str
    """The name's first part: `BTC`, or `MATIC_USDC` for a linear option."""
    base: str
    settle: str | None
    """`USDC` for linear options; None when the option settles in its base coin."""
    expiry_ns: int
    strike: Decimal
    kind: str
    """"call" or "put"."""


def expiry_ns(day: dt.date) -> int:
    """Deribit options expire at 08:00 UTC on their expiry date."""
    moment = dt.datetime(day.year, day.month, day.day, EXPIRY_HOUR_UTC, tzinfo=dt.UTC)
    return int(moment.timestamp()) * 1_000_000_000


def expiry_code(expiry: int) -> str:
    """08:00 UTC expiry instant (ns) -> `27SEP24`."""
    day = dt.datetime.fromtimestamp(expiry // 1_000_000_000, tz=dt.UTC).date()
    return f"{day.day}{MONTHS[day.month - 1]}{day.year % 100:02d}"


def parse(name: str) -> OptionName:
    """`BTC-24SEP21-8000-P` -> currency, settlement coin, 08:00 UTC expiry, exact strike, kind."""
    match = _NAME.fullmatch(name) if len(name) <= MAX_NAME else None
    if match is None:
        raise ProtocolError(f"not an option name like BTC-27SEP24-40000-C: {quote(name)}")
    base, settle, day, month, year, strike_text, letter = match.groups()
    if month not in MONTHS:
        raise ProtocolError(f"unknown month {month!r} in option name {quote(name)}")
    try:
        date = dt.date(2000 + int(year), MONTHS.index(month) + 1, int(day))
    except ValueError as exc:
        raise ProtocolError(f"invalid expiry date in option name {quote(name)}: {exc}") from None
    strike = Decimal(strike_text.replace("d", "."))
    if strike <= 0:
        raise ProtocolError(f"option strike must be positive: {quote(name)}")
    currency = base if settle is None else f"{base}_{settle}"
    kind = "call" if letter == "C" else "put"
    return OptionName(currency, base, settle, expiry_ns(date), strike, kind)
