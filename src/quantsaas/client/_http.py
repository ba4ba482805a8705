"""HTTP calls to the REST API: credentials, a few retries of transient failures, and every error
response turned into its ClientError (errors.problem_error).

A transport failure (refused, reset, timed out) or a 502/503/504 is tried again with backoff up
to `RETRIES` times, since history downloads are long and a restarting server is normal; a 429 is
not retried here: the caller gets RateLimited with the server's `Retry-After` and decides.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import httpx

from quantsaas import __version__
from quantsaas.client.errors import ClientError, ServerGone, problem_error
from quantsaas.errors import quote

RETRIES = 3
RETRY_STATUSES = frozenset({502, 503, 504})
Params = Mapping[str, str | int | None]


def auth_headers(api_key: str | None) -> dict[str, str]:
    headers = {"User-Agent": f"quantsaas-client/{__version__}"}
    if api_key:
        headers["X-API-Key"] = api_key
    return headers


class Http:
    def __init__(self, base_url: str, api_key: str | None, timeout_s: float) -> None:
        self.base_url = base_url
        self._client = httpx.AsyncClient(
            base_url=base_url, headers=auth_headers(api_key), timeout=timeout_s
        )

    async def get(self, path: str, params: Params | None = None) -> httpx.Response:
        """GET `path`; a 2xx response, or the ClientError for the failure."""
        query = {k: v for k, v in (params or {}).items() if v is not None}
        for attempt in range(RETRIES + 1):
            last = attempt == RETRIES
            try:
                response = await self._client.get(path, params=query)
            except httpx.TransportError as exc:
                if last:
                    raise ServerGone(f"GET {path}: {quote(exc) or type(exc).__name__}") from None
            else:
                if response.status_code < 400:
                    return response
                if response.status_code not in RETRY_STATUSES or last:
                    raise _error(response)
            await asyncio.sleep(0.25 * 2**attempt)
        raise AssertionError("unreachable")

    async def get_json(self, path: str, params: Params | None = None) -> Any:
        response = await self.get(path, params)
        try:
            return response.json()
        except ValueError:
            raise ClientError(f"GET {path}: the answer is not JSON") from None

    async def aclose(self) -> None:
        await self._client.aclose()


def _error(response: httpx.Response) -> ClientError:
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    return problem_error(response.status_code, body, response.headers)
