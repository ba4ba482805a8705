"""What the live analytics publish on the bus: one value type per derived stream.

Pure values (frozen, slotted), like the model's events: the wire table (`wire.py`) encodes them,
the analytics service (`live.py`) makes them.
"""

from __future__ import annotations

from dataclasses import dataclass

from quantsaas.analytics.greeks import VenueGreeks
from quantsaas.analytics.ofi import OfiBucket
from quantsaas.analytics.vpin import VpinBucket
from quantsaas.model import Instrument, OptionTicker


@dataclass(frozen=True, slots=True)
class OfiUpdate:
    instrument: Instrument
    bucket: OfiBucket
    ts_event: int
    ts_recv: int


@dataclass(frozen=True, slots=True)
class VpinUpdate:
    instrument: Instrument
    bucket: VpinBucket
    bucket_volume: int
    window: int
    ts_event: int
    ts_recv: int


@dataclass(frozen=True, slots=True)
class OptionGreeks:
    """Our greeks of one option ticker (`ours`), computed from its mark IV, beside the venue's."""

    instrument: Instrument
    ticker: OptionTicker
    ours: VenueGreeks
    ts_event: int
    ts_recv: int
