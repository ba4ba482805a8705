"""The FastAPI application around a runtime: REST routes, the /ws stream, problem+json errors;
the lifespan runs the runtime (feeds, consumers' jobs, Redis link) for the app's lifetime."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from fastapi import Depends, FastAPI
from fastapi.openapi.utils import get_openapi

from quantsaas import __version__
from quantsaas.accounts.tiers import load_tiers, load_weights
from quantsaas.api import problems
from quantsaas.api.access import openapi_security
from quantsaas.api.access_metrics import AccessCollector
from quantsaas.api.accounts_routes import router as accounts_router
from quantsaas.api.analytics_routes import router as analytics_router
from quantsaas.api.auth import Guard, LimitHeadersMiddleware, guard_request
from quantsaas.api.backtest_routes import router as backtest_router
from quantsaas.api.connections import open_connections
from quantsaas.api.consolidated_routes import router as consolidated_router
from quantsaas.api.headers import SecurityHeadersMiddleware
from quantsaas.api.history_routes import router as history_router
from quantsaas.api.intake import IntakeMiddleware
from quantsaas.api.metrics import HttpMetricsMiddleware, Metrics
from quantsaas.api.openapi import AllowTable
from quantsaas.api.openapi import finish as finish_openapi
from quantsaas.api.ops_routes import router as ops_router
from quantsaas.api.public_market import DelayedMarket
from quantsaas.api.ratelimit import Limiter, open_limiter
from quantsaas.api.routes import market_summary, probes, router
from quantsaas.api.stream import StreamCounters, websocket_endpoint
from quantsaas.api.web import DashboardMiddleware, dashboard_dist
from quantsaas.config import Settings
from quantsaas.errors import UnknownTier, quote
from quantsaas.logs import RequestIdMiddleware
from quantsaas.runtime import Runtime

if TYPE_CHECKING:  # SQLAlchemy loads when the accounts open, after the server listens
    from quantsaas.accounts.service import Accounts

log = logging.getLogger(__name__)

DESCRIPTION = """
Real-time crypto market data: exact L2 order books, trades and tickers per venue.

Symbols are canonical `BASE/QUOTE` (`BTC/USD`); inside URL paths write the `path_symbol`
that `/api/v1/instruments` lists (`BTC-USD`, or an option's own name `BTC-5DEC26-48000-C`).
Prices and amounts are decimal strings. Errors are RFC 9457 `application/problem+json`.

**Streaming**: connect a WebSocket to `/ws` and send
`{"op": "subscribe", "channels": ["trades", "book", "ticker"], "symbols": ["BTC/USD"]}`.
Every data message carries `channel`, `venue`, `symbol`, a per-stream `seq`, `timestamp` (ms),
`ts_event` and `ts_recv` (ns). `{"op": "ping"}` is answered with a `pong`.
"""


async def open_guard(
    settings: Settings, accounts: Accounts | None = None, limiter: Limiter | None = None
) -> Guard:
    """Accounts (migrated to the latest schema) and the rate limiter the API checks with."""
    tiers = load_tiers(settings.tiers_file)
    if settings.legacy_accounts_file and accounts is None:
        log.warning(
            "accounts: using %s, on the recording's disk; stop the service and move "
            "accounts.db* to %s to keep them apart (a full disk would stop logins)",
            settings.accounts_file,
            settings.accounts_dir.resolve(),
        )
    if accounts is None:
        from quantsaas.accounts.service import Accounts

        accounts = await Accounts.open(
            settings.accounts_database,
            tiers,
            session_ttl_s=settings.session_ttl_s,
            ticket_ttl_s=settings.ws_ticket_ttl_s,
            audit_retention_days=settings.audit_retention_days,
        )
    if limiter is None:
        limiter = open_limiter(settings.rate_limit_bus)
    guard = Guard(accounts, tiers, load_weights(settings.tiers_file), limiter, settings)
    guard.connections = open_connections(settings.rate_limit_bus)
    return guard


def _report_failure(opening: asyncio.Task[None]) -> None:
    if not opening.cancelled() and opening.exception() is not None:
        log.error("accounts could not be opened: %s", opening.exception())


def create_app(
    runtime: Runtime,
    accounts: Accounts | None = None,
    limiter: Limiter | None = None,
) -> FastAPI:
    """Build the API around a runtime (runtime.py), which runs for the app's lifetime.
    Accounts and the limiter open from the settings unless given (tests share them)."""
    settings = runtime.settings

    tiers_checked = load_tiers(settings.tiers_file)
    if settings.anonymous_tier is not None and settings.anonymous_tier not in tiers_checked:
        raise UnknownTier(
            f"anonymous tier {quote(settings.anonymous_tier)} is not in the tiers file"
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        """The runtime starts at once; the accounts open beside it (`open_accounts`), so the
        server listens, probes answer and data flows before SQLAlchemy has even loaded (the
        first /health comes ~0.2 s sooner). A request that needs the accounts meanwhile waits
        for them (auth.ready_guard); /readyz says not ready until they are open."""
        tasks = [
            asyncio.create_task(runtime.run(), name="runtime"),
            asyncio.create_task(app.state.delayed_market.run(), name="delayed-market"),
        ]
        opening = asyncio.create_task(open_accounts(app, tasks), name="accounts")
        opening.add_done_callback(_report_failure)
        app.state.accounts_opening = opening
        try:
            yield
        finally:
            opening.cancel()
            for task in tasks:
                task.cancel()
            await asyncio.gather(opening, *tasks, return_exceptions=True)
            guard: Guard | None = app.state.guard
            app.state.guard = None
            if guard is not None:
                await close_guard(guard)

    async def open_accounts(app: FastAPI, tasks: list[asyncio.Task[Any]]) -> None:
        # SQLAlchemy's import is ~0.2 s of CPU: in a thread, the loop goes on serving meanwhile
        await asyncio.to_thread(importlib.import_module, "quantsaas.accounts.service")
        guard = await open_guard(settings, accounts, limiter)
        try:
            guard.accounts.on_revoked(guard.sockets.revoke)
            if settings.bootstrap_admin:
                app.state.first_login = await guard.accounts.bootstrap_admin()
        except BaseException:
            await close_guard(guard)
            raise
        app.state.guard = guard
        tasks += [
            asyncio.create_task(guard.accounts.watch_revocations(), name="revocations"),
            asyncio.create_task(guard.connections.run(guard.sockets.held), name="ws-places"),
        ]

    async def close_guard(guard: Guard) -> None:
        await guard.connections.close()
        if accounts is None:
            await guard.accounts.close()
        if limiter is None:
            await guard.limiter.close()

    app = FastAPI(
        title="Quant-SaaS",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        dependencies=[Depends(guard_request)],
    )
    app.state.runtime = runtime
    app.state.engine = runtime.engine
    app.state.analytics = runtime.analytics
    app.state.consolidated = runtime.consolidated
    app.state.recorder = runtime.recorder
    app.state.bus_link = runtime.link
    app.state.settings = settings
    app.state.guard = None
    app.state.accounts_opening = None
    app.state.first_login = None
    app.state.delayed_market = DelayedMarket(
        lambda: {
            key: market_summary(runtime.read_model, instrument)
            for key, instrument in runtime.read_model.instruments().items()
        },
        settings.public_market_data_delay_s,
    )
    problems.install(app)
    app.include_router(probes)
    app.include_router(ops_router)
    if runtime.role != "ingest":  # an ingest process serves probes, metrics and the stream only
        app.include_router(router)
        app.include_router(analytics_router)
        app.include_router(consolidated_router)
        app.include_router(history_router)
        app.include_router(accounts_router)
        app.include_router(backtest_router)
    # a plain Starlette route: the app-wide HTTP dependency does not apply; /ws checks itself
    app.router.add_websocket_route("/ws", websocket_endpoint)
    app.state.stream_counters = StreamCounters()
    app.state.metrics = Metrics(runtime, app.state.stream_counters, app.state)
    app.state.metrics.registry.register(AccessCollector(app.state))
    dist = dashboard_dist(settings.web_dist) if runtime.role != "ingest" else None
    if dist is not None:
        app.add_middleware(DashboardMiddleware, dist=dist)
    app.add_middleware(IntakeMiddleware)  # credentials and rate limit before any body is read
    app.add_middleware(LimitHeadersMiddleware)
    app.add_middleware(HttpMetricsMiddleware, metrics=app.state.metrics)
    app.add_middleware(RequestIdMiddleware)
    app.add_middleware(SecurityHeadersMiddleware)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = (
                problems.PROBLEM_SCHEMA
            )
            openapi_security(schema)
            finish_openapi(schema, settings)  # configured caps, body errors (api/openapi.py)
            app.openapi_schema = schema
        return app.openapi_schema

    def allow(path: str) -> str | None:
        """The Allow header of a 405 at `path`: the methods the document has for it."""
        table = getattr(app.state, "allow_table", None)
        if table is None:
            table = app.state.allow_table = AllowTable(openapi())
        return table.allow(path)

    app.openapi = openapi  # type: ignore[method-assign]
    app.state.allow = allow
    return app
