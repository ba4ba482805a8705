"""Read-only backtest results: `/api/v1/backtests` lists the caller's, and one by id.

Results are written by backtests that ran in users' own processes (`quantsaas backtest
--user EMAIL`, backtest/cli.py) into `{data_dir}/backtests/u{user id}/`; the server only reads
them, and only the caller's own: another user's id answers 404 like a missing one (no
existence oracle). The server never runs a strategy. Access: signed-in users whose tier
includes `backtests` (api/access.py).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request

from quantsaas.api.auth import request_principal
from quantsaas.api.problems import PROBLEM_RESPONSES, Problem
from quantsaas.backtest.results import ResultStore
from quantsaas.config import Settings
from quantsaas.errors import StorageError

router = APIRouter(prefix="/api/v1/backtests", tags=["backtests"])
ResultId = Annotated[str, Path(max_length=40, description="as listed by /api/v1/backtests")]


def _owner(request: Request) -> str:
    principal = request_principal(request)
    if principal is None or principal.user_id is None:  # the access table already refuses
        raise Problem(401, "credentials-required", "sign in to see your backtests")
    return f"u{principal.user_id}"


def _store(request: Request) -> ResultStore:
    settings: Settings = request.app.state.settings
    return ResultStore(settings.data_dir)


@router.get("", summary="Your saved backtest results, newest first", responses=PROBLEM_RESPONSES)
def list_backtests(
    request: Request, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> dict[str, Any]:
    try:
        return {"data": _store(request).summaries(_owner(request), limit)}
    except StorageError as exc:
        raise Problem(503, "service-unavailable", str(exc)) from None


@router.get(
    "/{backtest_id}",
    summary="One result: metrics, trades, fills, equity and drawdown curves",
    responses={**PROBLEM_RESPONSES, 404: {"description": "No such result of yours"}},
)
def get_backtest(request: Request, backtest_id: ResultId) -> dict[str, Any]:
    try:
        result = _store(request).get(_owner(request), backtest_id)
    except StorageError as exc:
        raise Problem(503, "service-unavailable", str(exc)) from None
    if result is None:
        raise Problem(404, "not-found", f"no backtest {backtest_id[:40]!r} of yours")
    return result
