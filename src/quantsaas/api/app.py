"""The FastAPI application: REST routes, the /ws stream, problem+json errors, engine lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from quantsaas import __version__
from quantsaas.analytics.live import install_analytics
from quantsaas.api import consolidated_routes, problems
from quantsaas.api.analytics_routes import router as analytics_router
from quantsaas.api.history_routes import router as history_router
from quantsaas.api.metrics import HttpMetricsMiddleware, Metrics
from quantsaas.api.ops_routes import router as ops_router
from quantsaas.api.routes import router
from quantsaas.api.stream import StreamCounters, websocket_endpoint
from quantsaas.api.web import DashboardMiddleware, dashboard_dist
from quantsaas.config import Settings
from quantsaas.engine import Engine
from quantsaas.logs import RequestIdMiddleware

DESCRIPTION = """
Real-time crypto market data: exact L2 order books, trades and tickers per venue.

Symbols are canonical `BASE/QUOTE` (`BTC/USD`); inside URL paths write `BTC-USD`.
Prices and amounts are decimal strings. Errors are RFC 9457 `application/problem+json`.

**Streaming**: connect a WebSocket to `/ws` and send
`{"op": "subscribe", "channels": ["trades", "book", "ticker"], "symbols": ["BTC/USD"]}`.
Every data message carries `channel`, `venue`, `symbol`, a per-stream `seq`, `timestamp` (ms),
`ts_event` and `ts_recv` (ns). `{"op": "ping"}` is answered with a `pong`.
"""


def create_app(settings: Settings, engine: Engine) -> FastAPI:
    """Build the API around an engine; the engine's feeds run for the app's lifetime."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(engine.run(), name="engine")
        try:
            yield
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    app = FastAPI(
        title="Quant-SaaS",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.engine = engine
    app.state.settings = settings
    problems.install(app)
    app.include_router(router)
    app.state.analytics = install_analytics(engine)
    app.include_router(analytics_router)
    consolidated_routes.install(app)
    app.include_router(history_router)
    app.include_router(ops_router)
    app.add_api_websocket_route("/ws", websocket_endpoint)
    app.state.stream_counters = StreamCounters()
    app.state.metrics = Metrics(engine, app.state.stream_counters, app.state)
    dist = dashboard_dist(settings.web_dist)
    if dist is not None:
        app.add_middleware(DashboardMiddleware, dist=dist)
    app.add_middleware(HttpMetricsMiddleware, metrics=app.state.metrics)
    app.add_middleware(RequestIdMiddleware)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = (
                problems.PROBLEM_SCHEMA
            )
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
