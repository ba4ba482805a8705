"""Operations endpoints: /metrics (Prometheus), /livez (process up), /readyz (serving data)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from quantsaas.api.metrics import Metrics
from quantsaas.api.routes import feed_is_live
from quantsaas.model import now_ns
from quantsaas.runtime import Runtime

router = APIRouter(tags=["operations"])


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    registry: Metrics = request.app.state.metrics
    return Response(registry.render(), media_type=CONTENT_TYPE_LATEST)


@router.get("/livez", summary="Liveness: the process answers (no dependency checks)")
async def livez() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: a feed is live, accounts can be read and written, the recorder writes",
    responses={503: {"description": "Not ready"}},
)
async def readyz(request: Request) -> JSONResponse:
    runtime: Runtime = request.app.state.runtime
    at_ns = now_ns()
    live = [feed.venue for feed in runtime.feeds if feed_is_live(feed, at_ns)]
    checks: dict[str, bool] = {}
    link = runtime.link
    if runtime.feeds or link is None:
        checks["feed_live"] = bool(live)
    if link is not None:
        checks.update(link.ready_checks())  # Redis reachable (and, api role, data arriving)
    guard = getattr(request.app.state, "guard", None)
    checks["accounts_db"] = guard is not None and await guard.accounts.ping()
    # writable, and no revocation waiting to be written (one this process refuses, others not)
    checks["accounts_writable"] = guard is not None and await guard.accounts.writable()
    recorder = getattr(request.app.state, "recorder", None)
    if recorder is not None:
        checks["recorder_ok"] = recorder.status.ok  # the last flush wrote what it had
    for consumer in runtime.bus.consumers:  # failed within the last few seconds: not ready
        if consumer.failing(at_ns):
            checks[f"consumer_{consumer.name}_ok"] = False
    ready = all(checks.values())
    body = {"status": "ready" if ready else "not ready", "checks": checks, "live_feeds": live}
    return JSONResponse(body, status_code=200 if ready else 503)
