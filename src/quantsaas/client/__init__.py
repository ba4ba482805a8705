"""Python client of Quant-SaaS: typed live streams and history as DataFrames.

    from quantsaas.client import AsyncClient

    async with AsyncClient("http://127.0.0.1:8000") as client:   # key: QUANTSAAS_API_KEY
        async for trade in client.trades("BTC/USD", venue="sim"):
            print(trade.price, trade.size, trade.side)

`Client` is the blocking twin (same arguments, plain `for` loops). Streams yield the model's
exact values (`Trade`, `Ticker`, `BookSnapshot`, `BookDelta`: raw integers at the instrument's
scales, `ts_event`/`ts_recv` in ns) and the client's (`Candle`, `Ofi`, `Vpin`, `Greeks`), plus
a `Gap` wherever part of a stream was lost. Errors are `ClientError` subclasses (errors.py).
The client speaks only the public protocol (/ws and the REST API); it imports nothing of the
server but the shared value types (quantsaas.model, quantsaas.errors).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from quantsaas.client._async import AsyncClient
    from quantsaas.client._streams import StreamStats
    from quantsaas.client.errors import (
        AuthError,
        BadRequest,
        ClientError,
        NotFound,
        NotReady,
        ProtocolViolation,
        RateLimited,
        ServerGone,
        StreamStalled,
        TierRequired,
        UnknownSymbol,
    )
    from quantsaas.client.events import Candle, Gap, Greeks, GreekValues, Ofi, Vpin
    from quantsaas.client.sync import Client

_HOME = {
    "AsyncClient": "_async",
    "StreamStats": "_streams",
    "Client": "sync",
    **dict.fromkeys(
        (
            "AuthError",
            "BadRequest",
            "ClientError",
            "NotFound",
            "NotReady",
            "ProtocolViolation",
            "RateLimited",
            "ServerGone",
            "StreamStalled",
            "TierRequired",
            "UnknownSymbol",
        ),
        "errors",
    ),
    **dict.fromkeys(("Candle", "Gap", "Greeks", "GreekValues", "Ofi", "Vpin"), "events"),
}
"""Where each export lives: imported on first use, so `quantsaas serve` (whose command line
registers `quantsaas tail`) never loads the client's HTTP stack."""


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'quantsaas.client' has no attribute {name!r}")
    return getattr(importlib.import_module(f"quantsaas.client.{home}"), name)


__all__ = [
    "AsyncClient",
    "AuthError",
    "BadRequest",
    "Candle",
    "Client",
    "ClientError",
    "Gap",
    "GreekValues",
    "Greeks",
    "NotFound",
    "NotReady",
    "Ofi",
    "ProtocolViolation",
    "RateLimited",
    "ServerGone",
    "StreamStalled",
    "StreamStats",
    "TierRequired",
    "UnknownSymbol",
    "Vpin",
]
