"""The OpenAPI document tells the configured caps, the body errors and the methods of a path."""

from __future__ import annotations

from typing import Any

from helpers import ScriptedFeed, make_instrument, make_runtime
from quantsaas.api.app import create_app
from quantsaas.api.openapi import AllowTable
from quantsaas.config import Settings


def document(**settings: Any) -> dict[str, Any]:
    runtime = make_runtime([ScriptedFeed([make_instrument()])], Settings(web_dist=None, **settings))
    schema: dict[str, Any] = create_app(runtime).openapi()
    return schema


def parameter(schema: dict[str, Any], path: str, name: str) -> dict[str, Any]:
    (found,) = [p for p in schema["paths"][path]["get"]["parameters"] if p["name"] == name]
    return dict(found["schema"])


def test_depth_and_limit_caps_are_the_configured_ones() -> None:
    defaults = document()
    assert parameter(defaults, "/api/v1/book/{venue}/{symbol}", "depth")["maximum"] == 1000
    assert parameter(defaults, "/api/v1/trades/{venue}/{symbol}", "limit")["maximum"] == 1000
    history = "/api/v1/history/trades/{venue}/{symbol}"
    assert parameter(defaults, history, "limit")["maximum"] == 10_000
    assert parameter(defaults, "/api/v1/history/book/{venue}/{symbol}", "depth")["maximum"] == 1000
    tuned = document(max_book_depth=20, history_max_rows=500, max_trades_limit=50)
    assert parameter(tuned, "/api/v1/book/{venue}/{symbol}", "depth")["maximum"] == 20
    assert parameter(tuned, history, "limit")["maximum"] == 500
    assert parameter(tuned, "/api/v1/trades/{venue}/{symbol}", "limit")["maximum"] == 50
    assert "x-quantsaas-cap" not in str(tuned)


def test_body_routes_document_400_413_and_problem_422() -> None:
    schema = document()
    problem = {"$ref": "#/components/schemas/Problem"}
    for path, method in (("/api/v1/keys", "post"), ("/api/v1/auth/login", "post")):
        responses = schema["paths"][path][method]["responses"]
        for status in ("400", "413", "422"):
            assert responses[status]["content"] == {
                "application/problem+json": {"schema": problem}
            }, (path, status)


def test_the_allow_table_lists_every_method_of_a_path() -> None:
    table = AllowTable(document())
    assert table.allow("/api/v1/keys") == "GET, HEAD, POST"
    assert table.allow("/api/v1/keys/abc") == "DELETE"
    assert table.allow("/api/v1/book/sim/BTC-USD") == "GET, HEAD"
    assert table.allow("/nowhere") is None
