"""Client: the blocking twin of AsyncClient, for scripts and notebooks without `await`.

It runs one AsyncClient on an event loop in a background thread (a "portal") and calls it from
the caller's thread: a method waits for its coroutine, an iterator fetches each item from the
async iterator. So both clients run the same code: same streams, reconnects, gaps and errors.
Items and errors are handed over between threads, never shared state: a book comes out as an
immutable BookSnapshot built on the loop's thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, TypeVar, cast

from quantsaas.client._async import DEFAULT_URL, AsyncClient
from quantsaas.client._streams import StreamStats
from quantsaas.client.history import History
from quantsaas.model import BookSnapshot

P = ParamSpec("P")
T = TypeVar("T")


class Portal:
    """An event loop in a daemon thread, and the calls into it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="quantsaas-client", daemon=True
        )
        self._thread.start()

    def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()  # Ctrl+C in the caller: stop the work in the loop too
            raise

    def iterate(self, iterator: AsyncIterator[T]) -> Iterator[T]:
        """Pull `iterator` from the caller's thread; leaving the loop closes it (unsubscribes)."""
        try:
            while True:
                future = asyncio.run_coroutine_threadsafe(_anext(iterator), self.loop)
                try:
                    done, item = future.result()
                except BaseException:
                    future.cancel()
                    _wait_cancelled(future)
                    raise
                if done:
                    return
                yield cast(T, item)
        finally:
            closing = getattr(iterator, "aclose", None)
            if closing is not None and not self.loop.is_closed():
                asyncio.run_coroutine_threadsafe(closing(), self.loop).result()

    def close(self) -> None:
        if not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join()
            self.loop.close()


async def _anext(iterator: AsyncIterator[T]) -> tuple[bool, T | None]:
    try:
        return False, await anext(iterator)
    except StopAsyncIteration:
        return True, None


def _wait_cancelled(future: concurrent.futures.Future[Any]) -> None:
    """Let a cancelled step finish unwinding in the loop before the iterator is closed."""
    try:
        future.result(timeout=5)
    except BaseException:  # noqa: B036 - cancelled or failed: either way it is over
        pass


def _iterating(
    method: Callable[Concatenate[AsyncClient, P], AsyncIterator[T]],
) -> Callable[Concatenate[Client, P], Iterator[T]]:
    def call(self: Client, /, *args: P.args, **kwargs: P.kwargs) -> Iterator[T]:
        return self._portal.iterate(method(self._async, *args, **kwargs))

    call.__doc__ = method.__doc__
    call.__name__ = method.__name__
    return call


def _blocking(
    method: Callable[Concatenate[Any, P], Coroutine[Any, Any, T]], target: str
) -> Callable[Concatenate[Any, P], T]:
    def call(self: Any, /, *args: P.args, **kwargs: P.kwargs) -> T:
        portal: Portal = self._portal
        return portal.call(method(getattr(self, target), *args, **kwargs))

    call.__doc__ = method.__doc__
    call.__name__ = method.__name__
    return call


class SyncHistory:
    """`client.history` of the blocking Client: the same calls, returning DataFrames."""

    def __init__(self, portal: Portal, history: History) -> None:
        self._portal = portal
        self._history = history

    trades = _blocking(History.trades, "_history")
    candles = _blocking(History.candles, "_history")
    book_at = _blocking(History.book_at, "_history")
    backtests = _blocking(History.backtests, "_history")
    backtest = _blocking(History.backtest, "_history")


class Client:
    """Blocking client, same arguments as AsyncClient: `with Client(url) as client:` then
    `for trade in client.trades("BTC/USD", venue="sim"): ...`."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        api_key: str | None = None,
        *,
        stall_s: float | None = 60.0,
        give_up_s: float | None = 60.0,
        timeout_s: float = 30.0,
        progress: bool | None = None,
    ) -> None:
        self._portal = Portal()

        async def build() -> AsyncClient:  # httpx and asyncio objects belong to the loop
            return AsyncClient(
                base_url,
                api_key,
                stall_s=stall_s,
                give_up_s=give_up_s,
                timeout_s=timeout_s,
                progress=progress,
            )

        try:
            self._async = self._portal.call(build())
        except BaseException:
            self._portal.close()
            raise
        self.base_url = self._async.base_url
        self.history = SyncHistory(self._portal, self._async.history)

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if not self._portal.loop.is_closed():
            self._portal.call(self._async.aclose())
            self._portal.close()

    @property
    def stats(self) -> StreamStats:
        return self._async.stats

    @property
    def down(self) -> dict[str, str]:
        return self._portal.call(_sync_call(lambda: self._async.down))

    def local_book(self, symbol: str, venue: str) -> BookSnapshot | None:
        """The book a running `book()` iterator keeps (read on the loop's thread)."""
        return self._portal.call(_sync_call(self._async.local_book, symbol, venue))

    instruments = _blocking(AsyncClient.instruments, "_async")
    fetch_book = _blocking(AsyncClient.fetch_book, "_async")
    trades = _iterating(AsyncClient.trades)
    ticker = _iterating(AsyncClient.ticker)
    book = _iterating(AsyncClient.book)
    candles = _iterating(AsyncClient.candles)
    ofi = _iterating(AsyncClient.ofi)
    vpin = _iterating(AsyncClient.vpin)
    greeks = _iterating(AsyncClient.greeks)
    stream = _iterating(AsyncClient.stream)


async def _sync_call(function: Callable[..., T], *args: Any) -> T:
    """Run a plain function on the loop's thread (it reads state the loop changes)."""
    return function(*args)
