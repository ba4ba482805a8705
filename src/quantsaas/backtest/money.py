"""Exact money of a backtest: cash units, fee rates, the account and its accounting identity.

Units (everything is an `int`, nothing is ever a float):
* a price is raw at the instrument's `price_scale`, a size or position raw at its `size_scale`;
* a **mark** is raw at `price_scale + 1`: the mid `(bid + ask) / 2` is then `(bid + ask) * 5`,
  exact; a last trade price `p` is `p * 10`;
* **cash** is held per quote currency as an integer count of `10**-cash_scale` units of that
  currency, where `cash_scale` is the largest `price_scale + size_scale + 1` of the run's
  instruments quoted in it. A fill's notional `price * size` (at `price_scale + size_scale`) is
  multiplied by `10**(cash_scale - price_scale - size_scale)`, and `position * mark` by
  `10**(cash_scale - price_scale - size_scale - 1)`: both land on cash units exactly;
* a **fee rate** is a decimal fraction of notional with at most 8 decimals (`0.0007` = 7 bp,
  `-0.00005` = a 0.5 bp maker rebate), raw at FEE_SCALE. A fee is `notional * rate` rounded to
  a whole cash unit **against the trader** (a fee up, a rebate down in size: `ceil`), the way
  venues round commissions to their asset's precision; the rounded integer is what the cash
  pays, so nothing is lost track of.

The identity `equity = cash + sum(position * mark)` therefore holds to the last cash unit after
every event; `Account.check()` asserts it against an independent recomputation from the fills.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from quantsaas.backtest.orders import Fill, Liquidity
from quantsaas.errors import ConfigError, InvalidNumber
from quantsaas.model import Instrument, Side, format_fixed, parse_fixed

FEE_SCALE = 8
FEE_UNIT: int = 100_000_000
"""10**FEE_SCALE."""
MAX_FEE_RATE = 10**FEE_SCALE // 10
"""A fee rate above 10 % (or a rebate above 10 %) is refused as a typo."""


def parse_rate(text: str) -> int:
    """`0.0007`, `7bp`, `-0.5bp` -> raw rate at FEE_SCALE."""
    body = text.strip().lower()
    try:
        if body.endswith("bp"):
            raw = parse_fixed(body[:-2], FEE_SCALE - 4)
        else:
            raw = parse_fixed(body, FEE_SCALE)
    except InvalidNumber as exc:
        raise ConfigError(f"bad fee rate {text[:40]!r}: {exc}") from None
    if abs(raw) > MAX_FEE_RATE:
        raise ConfigError(f"fee rate {text[:40]!r} is beyond +-10 %")
    return raw


@dataclass(frozen=True, slots=True)
class Fees:
    """Maker and taker rates, raw at FEE_SCALE; a negative maker rate is a rebate."""

    maker: int = 0
    taker: int = 0

    @classmethod
    def parse(cls, text: str) -> Fees:
        """`MAKER,TAKER` (`-0.5bp,7bp`, `0.0002,0.0007`) or one rate for both."""
        parts = [p for p in text.split(",") if p.strip()]
        if len(parts) == 1:
            rate = parse_rate(parts[0])
            return cls(rate, rate)
        if len(parts) != 2:
            raise ConfigError(f"--fees takes MAKER,TAKER (e.g. -0.5bp,7bp), not {text[:40]!r}")
        return cls(parse_rate(parts[0]), parse_rate(parts[1]))

    def rate(self, liquidity: Liquidity) -> int:
        return self.maker if liquidity is Liquidity.MAKER else self.taker

    def describe(self) -> dict[str, str]:
        return {
            "maker": format_fixed(self.maker, FEE_SCALE),
            "taker": format_fixed(self.taker, FEE_SCALE),
        }


def fee_of(notional_cash: int, rate: int) -> int:
    """`notional * rate` in cash units, rounded up (against the trader, for fees and rebates)."""
    return -((-notional_cash * rate) // FEE_UNIT)


class Units:
    """The cash scale of each quote currency and each instrument's multipliers into it."""

    def __init__(self, instruments: Iterable[Instrument]) -> None:
        chosen = list(instruments)
        scales: dict[str, int] = {}
        for instrument in chosen:
            scale = instrument.price_scale + instrument.size_scale + 1
            scales[instrument.quote] = max(scales.get(instrument.quote, 0), scale)
        self.cash_scale = scales
        self.notional_mult: dict[tuple[str, str], int] = {}
        self.mark_mult: dict[tuple[str, str], int] = {}
        for instrument in chosen:
            base = instrument.price_scale + instrument.size_scale
            shift = scales[instrument.quote] - base
            self.notional_mult[instrument.key] = 10**shift
            self.mark_mult[instrument.key] = 10 ** (shift - 1)

    def cash(self, currency: str, text: str) -> int:
        """Decimal text in `currency` -> cash units."""
        return parse_fixed(text, self.cash_scale[currency])

    def format_cash(self, currency: str, raw: int) -> str:
        return format_fixed(raw, self.cash_scale[currency])


class Account:
    """Cash per quote currency, positions and marks per instrument; fills change both at once."""

    def __init__(self, units: Units, initial_cash: dict[str, int]) -> None:
        self.units = units
        self.initial = {c: initial_cash.get(c, 0) for c in units.cash_scale}
        self.cash = dict(self.initial)
        self.positions: dict[tuple[str, str], int] = {}
        self.marks: dict[tuple[str, str], int] = {}
        self.fees: dict[str, int] = dict.fromkeys(units.cash_scale, 0)
        self.traded: dict[str, int] = dict.fromkeys(units.cash_scale, 0)
        """Sum of |notional| of every fill, in cash units (turnover)."""
        self.quote_of: dict[tuple[str, str], str] = {}
        self.fills = 0

    def register(self, instrument: Instrument) -> None:
        self.quote_of[instrument.key] = instrument.quote
        self.positions.setdefault(instrument.key, 0)

    def notional(self, instrument: Instrument, price: int, size: int) -> int:
        return price * size * self.units.notional_mult[instrument.key]

    def apply(self, fill: Fill) -> None:
        instrument = fill.instrument
        key = instrument.key
        notional = fill.price * fill.size * self.units.notional_mult[key]
        currency = instrument.quote
        if fill.side is Side.BUY:
            self.cash[currency] -= notional
            self.positions[key] = self.positions.get(key, 0) + fill.size
        else:
            self.cash[currency] += notional
            self.positions[key] = self.positions.get(key, 0) - fill.size
        self.cash[currency] -= fill.fee
        self.fees[currency] += fill.fee
        self.traded[currency] += notional
        self.fills += 1
        if key not in self.marks:
            self.marks[key] = fill.price * 10

    def set_mark(self, key: tuple[str, str], mark: int) -> None:
        """`mark` raw at price_scale + 1 (see the module docstring)."""
        self.marks[key] = mark

    def position_value(self, currency: str) -> int:
        total = 0
        mult = self.units.mark_mult
        for key, position in self.positions.items():
            if position and self.quote_of[key] == currency:
                total += position * self.marks.get(key, 0) * mult[key]
        return total

    def equity(self, currency: str) -> int:
        """cash + sum(position x mark), in cash units: exact."""
        return self.cash[currency] + self.position_value(currency)

    def gross_exposure(self, currency: str) -> int:
        total = 0
        mult = self.units.mark_mult
        for key, position in self.positions.items():
            if position and self.quote_of[key] == currency:
                total += abs(position * self.marks.get(key, 0) * mult[key])
        return total

    def check(self, fills: Iterable[Fill]) -> None:
        """Recompute cash and positions from `fills` alone and compare: the accounting identity.
        Raises AssertionError on any difference (tests call it after every event)."""
        cash = dict(self.initial)
        positions: dict[tuple[str, str], int] = dict.fromkeys(self.positions, 0)
        for fill in fills:
            key = fill.instrument.key
            notional = fill.price * fill.size * self.units.notional_mult[key]
            sign = 1 if fill.side is Side.BUY else -1
            cash[fill.instrument.quote] += -sign * notional - fill.fee
            positions[key] = positions.get(key, 0) + sign * fill.size
        if cash != self.cash or {k: v for k, v in positions.items() if v} != {
            k: v for k, v in self.positions.items() if v
        }:
            raise AssertionError(f"accounting drift: {cash} != {self.cash}")
        for currency in self.cash:
            value = sum(
                positions[key] * self.marks.get(key, 0) * self.units.mark_mult[key]
                for key in positions
                if self.quote_of.get(key) == currency
            )
            if cash[currency] + value != self.equity(currency):
                raise AssertionError(f"equity identity broken in {currency}")
