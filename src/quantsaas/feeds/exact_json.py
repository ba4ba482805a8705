"""JSON decoding that keeps numbers exact: fractions and exponents arrive as the venue's own text.

Shared by venues whose frames carry prices as JSON numbers (Kraken v2, Deribit). Each venue
builds its own `decode`/`text` pair once, so errors name the venue and the hot path stays a single
call.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from quantsaas.errors import ProtocolError

_DECODER = json.JSONDecoder(parse_float=str)
"""Numbers with a fraction or exponent come back as their exact text; built once."""


def decoder(venue: str) -> Callable[[str | bytes], Any]:
    """Raw frame -> decoded JSON with exact-text numbers; invalid JSON raises `ProtocolError`."""

    def decode(raw: str | bytes) -> Any:
        try:
            text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
            return _DECODER.decode(text)
        except (ValueError, RecursionError) as exc:
            raise ProtocolError(f"{venue}: invalid JSON: {exc}") from None

    return decode


def number_text(venue: str) -> Callable[[Any], str]:
    """A JSON number decoded with parse_float=str (or an int) -> the venue's exact text."""

    def text(value: Any) -> str:
        if isinstance(value, str):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        raise ProtocolError(f"{venue}: expected a number, got {value!r}")

    return text
