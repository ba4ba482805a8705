"""The trade list: round trips from flat to flat, per instrument, built from the fills.

A fill that crosses zero (long 1 -> short 1) closes one round trip and opens the next; its
size splits exactly and its fee is split in proportion (floor), the remainder staying with the
closing part, so the round trips' fees add up to the fills' fees. `pnl` is the exact change of
cash over the round trip, fees included, in cash units (money.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from quantsaas.backtest.money import Units
from quantsaas.backtest.orders import Fill
from quantsaas.model import Instrument, Side


@dataclass
class RoundTrip:
    instrument: Instrument
    direction: str
    """long or short."""
    entry_ns: int
    exit_ns: int | None = None
    size: int = 0
    """Largest absolute position reached."""
    entry_notional: int = 0
    entry_size: int = 0
    exit_notional: int = 0
    exit_size: int = 0
    fees: int = 0
    pnl: int = 0
    fills: int = 0
    _position: int = field(default=0, repr=False)

    def price(self, notional: int, size: int) -> str | None:
        """VWAP in price units, exact to 12 decimals past the price scale."""
        if not size:
            return None
        value = Decimal(notional) / Decimal(size) / Decimal(10) ** self.instrument.price_scale
        return str(value.quantize(Decimal(10) ** -(self.instrument.price_scale + 12)).normalize())

    def as_dict(self, units: Units) -> dict[str, object]:
        currency = self.instrument.quote
        return {
            "venue": self.instrument.venue,
            "symbol": self.instrument.symbol,
            "direction": self.direction,
            "entry_ns": self.entry_ns,
            "exit_ns": self.exit_ns,
            "size": self.instrument.format_size(self.size),
            "entry_price": self.price(self.entry_notional, self.entry_size),
            "exit_price": self.price(self.exit_notional, self.exit_size),
            "fees": units.format_cash(currency, self.fees),
            "pnl": units.format_cash(currency, self.pnl),
            "fills": self.fills,
        }


def round_trips(fills: Sequence[Fill], units: Units) -> list[RoundTrip]:
    open_trips: dict[tuple[str, str], RoundTrip] = {}
    done: list[RoundTrip] = []
    for fill in fills:
        key = fill.instrument.key
        sign = 1 if fill.side is Side.BUY else -1
        left, fee = fill.size, fill.fee
        while left:
            trip = open_trips.get(key)
            if trip is None:
                trip = RoundTrip(fill.instrument, "long" if sign > 0 else "short", fill.ts_ns)
                open_trips[key] = trip
            position = trip._position
            closing = position * sign < 0
            amount = min(left, abs(position)) if closing else left
            part_fee = fee if amount == left else fee * amount // left
            mult = units.notional_mult[key]
            notional = fill.price * amount
            trip.fills += 1
            trip.fees += part_fee
            trip.pnl += -sign * notional * mult - part_fee
            if closing:
                trip.exit_notional += notional
                trip.exit_size += amount
            else:
                trip.entry_notional += notional
                trip.entry_size += amount
            trip._position = position + sign * amount
            trip.size = max(trip.size, abs(trip._position))
            left -= amount
            fee -= part_fee
            if trip._position == 0:
                trip.exit_ns = fill.ts_ns
                done.append(trip)
                del open_trips[key]
    done.extend(open_trips.values())
    return done
