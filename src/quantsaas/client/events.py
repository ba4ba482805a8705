"""Typed values the client yields beside the model's own (`Trade`, `BookSnapshot`, `BookDelta`,
`Ticker`, `OptionTicker` from quantsaas.model).

The server's analytics types live in its internals, which the client does not import; these are
their wire shapes (api/analytics_wire.py) as frozen values, exact where the wire is exact: prices,
volumes and OFI are raw integers at the instrument's scales, VWAP a Decimal, VPIN and greeks
floats. Every value carries `instrument`, `ts_event` and `ts_recv` (integer ns) like the model's.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from quantsaas.model import Instrument, OptionTicker


@dataclass(frozen=True, slots=True)
class Gap:
    """Part of a stream was lost; the stream goes on after it (a book from a fresh snapshot).

    `reason`: "sequence" (the client saw `seq` jump), "server" (the server dropped messages for
    a slow reader), "reconnect" (the connection was lost and re-established), "malformed" (a
    message could not be decoded) or "crossed" (the local book crossed: it is rebuilt).
    `missed`: how many messages were lost, None when nobody can know (a restarted server).
    """

    channel: str
    venue: str
    symbol: str
    missed: int | None
    reason: str
    ts_recv: int
    """When the client noticed (ns)."""


@dataclass(frozen=True, slots=True)
class Candle:
    """OHLCV of one interval; `closed` is False while the candle is still open."""

    instrument: Instrument
    interval: str
    start_ns: int
    open: int
    high: int
    low: int
    close: int
    volume: int
    buy_volume: int
    vwap: Decimal | None
    trades: int
    closed: bool
    ts_event: int
    ts_recv: int


@dataclass(frozen=True, slots=True)
class Ofi:
    """One closed order-flow-imbalance bucket: `ofi` per level in raw size units (exact),
    `normalised` by the bucket's mean depth (None where undefined)."""

    instrument: Instrument
    start_ns: int
    width_ns: int
    ofi: tuple[int, ...]
    normalised: tuple[float | None, ...]
    mean_depth: int
    events: int
    ts_event: int
    ts_recv: int


@dataclass(frozen=True, slots=True)
class Vpin:
    """One completed VPIN volume bucket; `vpin` is None until `window` buckets are complete."""

    instrument: Instrument
    bucket: int
    bucket_volume: int
    window: int
    buy_volume: float
    sell_volume: float
    vpin: float | None
    ts_event: int
    ts_recv: int


@dataclass(frozen=True, slots=True)
class GreekValues:
    """Price and greeks in the venue's convention (USD delta and gamma, vega per vol point,
    theta per day, rho per 1 %); None where the server had no finite value."""

    price: float | None
    delta: float | None
    gamma: float | None
    vega: float | None
    theta: float | None
    rho: float | None
    coin_delta: float | None


@dataclass(frozen=True, slots=True)
class Greeks:
    """An option's ticker (the venue's greeks in it) beside the server's own greeks (`ours`)."""

    instrument: Instrument
    ticker: OptionTicker
    ours: GreekValues | None
    ts_event: int
    ts_recv: int
