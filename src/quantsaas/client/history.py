"""Recorded history as pandas DataFrames: `client.history.trades(...)`, `.candles(...)`,
`.book_at(...)`, and saved backtest results: `.backtests()`, `.backtest(id)` (backtests.py).

Trades and candles download Parquet pages (`format=parquet`: raw int64 prices with the
instrument's scales for trades) and follow the server's `Link: rel="next"` header page after
page until the range is done, so a caller names a range and gets every row once, however many
pages it takes. A range longer than one page shows a progress bar (tqdm; `progress=False`
hides it, `True` shows it always). Times are ISO 8601 text, integer nanoseconds, `datetime`s
(naive ones are UTC), pandas Timestamps, or a `timedelta` from now (`timedelta(hours=-1)`: an
hour ago); `end` defaults to now.

pandas is imported on first use, so the streaming client works without the `client` extra.
"""

from __future__ import annotations

import datetime as dt
import io
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit
from urllib.parse import quote as quote_path

from quantsaas.client._http import Http
from quantsaas.client.errors import ProtocolViolation
from quantsaas.errors import quote
from quantsaas.model import Instrument, symbol_to_path

if TYPE_CHECKING:
    import pandas as pd

    from quantsaas.client.backtests import BacktestResult

Time = str | int | dt.datetime | dt.timedelta
InstrumentOf = Callable[[str, str | None], Awaitable[Instrument]]
PAGE_ROWS = 10_000
"""Rows per page: the server's default cap (`history_max_rows`)."""


def _nanoseconds(span: dt.timedelta) -> int:
    return (span.days * 86_400 + span.seconds) * 10**9 + span.microseconds * 1000


def time_param(value: Time | None) -> str:
    """A time as the API takes it: ISO text passes through, everything else is integer ns."""
    if value is None:
        return str(time.time_ns())
    if isinstance(value, dt.timedelta):
        return str(time.time_ns() + _nanoseconds(value))
    if isinstance(value, str):
        return value
    if isinstance(value, dt.datetime):
        nanos = getattr(value, "value", None)  # pandas.Timestamp: exact ns
        if isinstance(nanos, int) and value.tzinfo is not None:
            return str(nanos)
        moment = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
        return str(_nanoseconds(moment - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)))
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise TypeError(f"a time is ISO text, integer ns or a datetime, not {quote(value)}")


def next_param(response: Any, name: str) -> str | None:
    """The `name` query parameter of the response's `Link: <...>; rel="next"`, if any."""
    link = response.links.get("next")
    if not link:
        return None
    values = parse_qs(urlsplit(str(link.get("url", ""))).query).get(name)
    if not values:
        raise ProtocolViolation(f"next link without {name}: {quote(link)}")
    return str(values[0])


class Progress:
    """tqdm over the time range covered so far (shown only for multi-page downloads)."""

    def __init__(self, label: str, start: int, end: int, show: bool | None) -> None:
        self.label, self.start, self.end, self.show = label, start, end, show
        self.bar: Any = None
        self.rows = 0

    def update(self, reached_ns: int, rows: int, more: bool) -> None:
        self.rows += rows
        if self.bar is None and (self.show or (self.show is None and more)):
            from tqdm.auto import tqdm

            total = max(1, (self.end - self.start) // 10**9)
            self.bar = tqdm(total=total, desc=self.label, unit="s", leave=False)
        if self.bar is not None:
            done = self.end if not more else min(self.end, max(self.start, reached_ns))
            self.bar.n = (done - self.start) // 10**9
            self.bar.set_postfix(rows=self.rows, refresh=False)
            self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class History:
    """The /api/v1/history routes; a `venue` of None means the only venue of the symbol."""

    def __init__(self, http: Http, instrument: InstrumentOf, progress: bool | None) -> None:
        self._http = http
        self._instrument = instrument
        self.progress = progress

    async def _path(self, kind: str, symbol: str, venue: str | None) -> tuple[str, str]:
        if venue is None:
            venue = (await self._instrument(symbol, None)).venue
        return venue, f"/api/v1/history/{kind}/{venue}/{symbol_to_path(symbol.strip())}"

    async def trades(
        self,
        symbol: str,
        start: Time,
        end: Time | None = None,
        venue: str | None = None,
        *,
        page_rows: int = PAGE_ROWS,
        progress: bool | None = None,
    ) -> pd.DataFrame:
        """Every recorded trade in [start, end), oldest first: ts_event, ts_recv, id, price,
        amount (exact decimals), side."""
        import pyarrow.parquet as pq

        from quantsaas.client import frames

        venue, path = await self._path("trades", symbol, venue)
        first, last = time_param(start), time_param(end)
        params: dict[str, str | int | None] = {"start": first, "end": last, "format": "parquet"}
        params["limit"] = page_rows
        tables = []
        scales = (0, 0)
        bar = Progress(f"{symbol} trades", *_span(first, last), _show(progress, self.progress))
        after: str | None = None
        try:
            while True:
                response = await self._http.get(path, {**params, "after": after})
                table = pq.read_table(io.BytesIO(response.content))
                if table.num_rows:
                    tables.append(table)
                    scales = _scales(table)
                after = next_param(response, "after")
                reached = table["ts_event"][-1].as_py() if table.num_rows else 0
                bar.update(reached, table.num_rows, after is not None)
                if after is None:
                    break
        finally:
            bar.close()
        return frames.trades_frame(tables, *scales)

    async def candles(
        self,
        symbol: str,
        start: Time,
        end: Time | None = None,
        interval: str = "1m",
        venue: str | None = None,
        *,
        page_rows: int = PAGE_ROWS,
        progress: bool | None = None,
    ) -> pd.DataFrame:
        """OHLCV candles from recorded trades (any interval 1s..1d): start, open, high, low,
        close (exact), volume, buy_volume (exact), vwap, trades, closed."""
        import pyarrow.parquet as pq

        from quantsaas.client import frames

        venue, path = await self._path("candles", symbol, venue)
        first, last = time_param(start), time_param(end)
        bar = Progress(f"{symbol} {interval}", *_span(first, last), _show(progress, self.progress))
        pages = []
        cursor = first
        try:
            while True:
                params: dict[str, str | int | None] = {"start": cursor, "end": last}
                params.update({"interval": interval, "limit": page_rows, "format": "parquet"})
                response = await self._http.get(path, params)
                table = pq.read_table(io.BytesIO(response.content))
                pages.append(table)
                following = next_param(response, "start")
                reached = table["start_ns"][-1].as_py() if table.num_rows else 0
                bar.update(reached, table.num_rows, following is not None)
                if following is None:
                    break
                cursor = following
        finally:
            bar.close()
        return frames.candles_frame(pages)

    async def backtests(self, limit: int = 100) -> pd.DataFrame:
        """Your saved backtest results, newest first: one row per (result, quote currency)
        with its headline (equity, total_return, sharpe, max_drawdown) and trade count."""
        from quantsaas.client import backtests

        body = await self._http.get_json("/api/v1/backtests", {"limit": limit})
        return backtests.summaries_frame(body)

    async def backtest(self, backtest_id: str) -> BacktestResult:
        """One saved result as DataFrames (metrics, curve, trades, fills) and its document."""
        from quantsaas.client import backtests

        path = f"/api/v1/backtests/{quote_path(backtest_id)}"
        return backtests.result_of(await self._http.get_json(path))

    async def book_at(
        self, symbol: str, at: Time, venue: str | None = None, depth: int = 50
    ) -> pd.DataFrame:
        """The book as it was at `at`: side, level, price, amount; time and nonce in attrs."""
        from quantsaas.client import frames

        venue, path = await self._path("book", symbol, venue)
        body = await self._http.get_json(path, {"at": time_param(at), "depth": depth})
        return frames.book_frame(body)


def _show(argument: bool | None, default: bool | None) -> bool | None:
    return argument if argument is not None else default


def _span(first: str, last: str) -> tuple[int, int]:
    """The range in ns for the progress bar (ISO text is shown as one step)."""
    try:
        return int(first), int(last)
    except ValueError:
        return 0, 1


def _scales(table: Any) -> tuple[int, int]:
    import orjson

    metadata = table.schema.metadata or {}
    raw = metadata.get(b"quantsaas.instrument")
    if raw is None:
        raise ProtocolViolation("a trades page without its instrument's scales")
    found = orjson.loads(raw)
    return int(found["price_scale"]), int(found["size_scale"])
