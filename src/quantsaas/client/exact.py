"""Exact decimal text -> raw integers, and the model values of the hot path built fast.

The server writes every price and size with exactly the instrument's number of decimals
("64012.50" at scale 2); that spelling takes a fast path (drop the point, `int`) after checks
that keep out what `int` would also take (other scripts' digits, spaces, underscores, signs).
Everything else goes through the model's `parse_size` / `parse_price`. The model's rules for
outside numbers hold on both paths: at most MAX_NUMBER_TEXT characters, within MAX_RAW (int64),
sizes not negative, prices positive. Never a float.

Prices repeat (the book's levels, trades at the touch: 97 % of the simulator's book prices were
seen before), so they are memoised per scale in bounded tables; sizes mostly do not (22 %), and
a table lookup plus insertion costs more than parsing them, so they are parsed every time.
"""

from __future__ import annotations

from quantsaas.model import (
    MAX_NUMBER_TEXT,
    MAX_RAW,
    Instrument,
    Level,
    parse_price,
    parse_size,
)

CACHE_MAX = 1 << 16
_CACHES: dict[int, dict[str, int]] = {}


def size_of(text: str, scale: int) -> int:
    """A size: decimal text -> raw integer at `scale` (InvalidNumber unless exact, not negative
    and within MAX_RAW; TypeError or AttributeError for what JSON holds that is not text)."""
    if len(text) <= MAX_NUMBER_TEXT and text.isascii():
        if scale:
            if len(text) > scale + 1 and text[-scale - 1] == ".":
                digits = text.replace(".", "", 1)
                if digits.isdigit():
                    value = int(digits)
                    if value <= MAX_RAW:
                        return value
        elif text.isdigit():
            value = int(text)
            if value <= MAX_RAW:
                return value
    return parse_size(text, scale)  # another spelling, or the model's own refusal


def memo(scale: int) -> dict[str, int]:
    """The price memo of `scale` (shared by every instrument of that scale)."""
    found = _CACHES.get(scale)
    if found is None:
        found = _CACHES[scale] = {}
    return found


def remember(table: dict[str, int], text: str, scale: int) -> int:
    """A price `table` does not hold yet: parse it and keep it (the table stays bounded)."""
    value = size_of(text, scale)
    if value == 0:
        value = parse_price(text, scale)  # raises: a price is positive
    if len(table) >= CACHE_MAX:
        table.clear()
    table[text] = value
    return value


def price_of(text: str, scale: int) -> int:
    """A price: decimal text -> raw integer at `scale`, memoised (InvalidNumber unless exact,
    positive and within MAX_RAW)."""
    table = memo(scale)
    value = table.get(text)
    return remember(table, text, scale) if value is None else value


class Codec:
    """One instrument, its scales and its price memo: what decoding its messages needs."""

    __slots__ = ("instrument", "price_scale", "size_scale", "prices", "zero")

    def __init__(self, instrument: Instrument) -> None:
        self.instrument = instrument
        self.price_scale = instrument.price_scale
        self.size_scale = instrument.size_scale
        self.prices = memo(instrument.price_scale)
        self.zero = instrument.format_size(0)
        """A deleted level's size as the server writes it ("0.00000000")."""

    def price(self, text: str) -> int:
        value = self.prices.get(text)
        return remember(self.prices, text, self.price_scale) if value is None else value

    def size(self, text: str) -> int:
        return size_of(text, self.size_scale)

    def levels(self, rows: list[list[str]]) -> tuple[Level, ...]:
        """[[price, size], ...] -> ((raw price, raw size), ...)."""
        if type(rows) is not list:
            raise TypeError("book levels must be a list")
        prices, price_scale, size_scale, zero = (
            self.prices,
            self.price_scale,
            self.size_scale,
            self.zero,
        )
        out: list[Level] = []
        for price_text, size_text in rows:
            price = prices.get(price_text)
            if price is None:
                price = remember(prices, price_text, price_scale)
            out.append((price, 0 if size_text == zero else size_of(size_text, size_scale)))
        return tuple(out)
