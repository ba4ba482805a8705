"""How a symbol written by a caller names instruments: the one resolution rule.

An instrument is listed (`/api/v1/instruments`) with three names, and a caller may use any of
them, in any letter case, in a URL path, in `/api/market_data?symbols=` and on `/ws`:

* `symbol`, the canonical name: `BTC/USD` for a pair, the venue's own name for an option
  (`BTC-5DEC26-48000-C`);
* `path_symbol`, the same without a slash, for URL paths: `BTC-USD`, `BTC-5DEC26-48000-C`;
* `native_symbol`, the venue's spelling: `BTCUSDT` (Binance), `BTC-PERP-INTX` (Coinbase).

Text is never rewritten before it is compared (the old rule turned every `-` into `/`, which
made an option or a Coinbase `BTC-PERP-INTX` unreachable): it is matched against the names the
instruments actually have. Canonical and path names are tried first, on every venue; native
names only when no instrument has the text as a canonical or path name, so `BTC-USD` keeps
naming every venue's BTC/USD even where some venue's native spelling differs.

A path symbol names one instrument per venue: `BASE-QUOTE` of two instruments of one venue
could only collide if their bases and quotes split one text differently (`A-B/C` and `A/B-C`),
which `ambiguous` finds.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from quantsaas.errors import UnknownInstrument, quote
from quantsaas.model import Instrument


def resolve(
    instruments: Iterable[Instrument], text: str, venue: str | None = None
) -> list[Instrument]:
    """The instruments `text` names (on `venue` only, if given), in the given order.

    Raises UnknownInstrument when none matches.
    """
    wanted = text.strip().upper()
    pool = [i for i in instruments if venue is None or i.venue == venue]
    found = [i for i in pool if wanted in (i.symbol.upper(), i.path_symbol.upper())]
    if not found:
        found = [i for i in pool if i.native_symbol.upper() == wanted]
    if not found:
        where = f" on venue {quote(venue)}" if venue is not None else ""
        raise UnknownInstrument(
            f"unknown symbol {quote(text)}{where}: write BASE/QUOTE or BTC-USD, or a name "
            "from /api/v1/instruments (symbol, path_symbol or native_symbol)"
        )
    return found


def chains(
    instruments: Iterable[Instrument], text: str, venue: str | None = None
) -> list[tuple[str, str]]:
    """(venue, underlying) of the listed option chains `text` names: by the underlying
    (`BTC/USD`, `BTC-USD`) or by one of the chain's options. Channels that publish a chain under
    its underlying (`options`, `greeks`) subscribe with these keys; a venue whose options are
    listed need not list the underlying itself (Deribit here serves options only)."""
    wanted = text.strip().upper()
    found: dict[tuple[str, str], None] = {}
    for i in instruments:
        option = i.option
        if option is None or (venue is not None and i.venue != venue):
            continue
        underlying = option.underlying.upper()
        names = (
            underlying,
            underlying.replace("/", "-"),
            i.symbol.upper(),
            i.native_symbol.upper(),
        )
        if wanted in names:
            found[(i.venue, option.underlying)] = None
    return list(found)


def ambiguous(instruments: Iterable[Instrument]) -> list[tuple[str, str]]:
    """(venue, path symbol) pairs shared by more than one instrument of that venue."""
    by_path: dict[tuple[str, str], set[str]] = defaultdict(set)
    for instrument in instruments:
        by_path[(instrument.venue, instrument.path_symbol.upper())].add(instrument.symbol)
    return sorted(key for key, names in by_path.items() if len(names) > 1)
