"""Security headers: the dashboard's strict policy, the docs' own, HSTS only over TLS."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from helpers import ScriptedFeed, make_instrument, make_runtime, served_as_cli
from quantsaas.api.app import create_app
from quantsaas.api.headers import DOCS_POLICY, dashboard_policy, security_headers
from quantsaas.config import Settings

INDEX = "<!doctype html><title>dash</title><div id=root></div>"


def directives(policy: str) -> dict[str, str]:
    return {d.split()[0]: d.partition(" ")[2] for d in policy.split("; ")}


def test_the_dashboard_policy_allows_this_origin_its_websocket_and_nothing_else() -> None:
    policy = directives(dashboard_policy("example.com:8443"))
    assert policy["default-src"] == policy["script-src"] == policy["style-src"] == "'self'"
    assert policy["connect-src"] == "'self' ws://example.com:8443 wss://example.com:8443"
    assert policy["worker-src"] == "'self'" and policy["frame-ancestors"] == "'none'"
    assert policy["object-src"] == "'none'" and policy["base-uri"] == "'none'"
    assert "unsafe" not in dashboard_policy("example.com")
    assert directives(dashboard_policy("[::1]:80"))["connect-src"].endswith("wss://[::1]:80")


@pytest.mark.parametrize(
    "host", ["evil.com; script-src *", "a b", "x" * 300, "", "host:port", "ex ample.com"]
)
def test_a_hostile_host_header_never_reaches_the_policy(host: str) -> None:
    assert directives(dashboard_policy(host))["connect-src"] == "'self'"
    assert directives(dashboard_policy(None))["connect-src"] == "'self'"


def test_hsts_only_over_tls() -> None:
    plain = {"type": "http", "scheme": "http", "path": "/", "headers": []}
    tls = {**plain, "scheme": "https"}
    assert b"strict-transport-security" not in dict(security_headers(plain))
    assert dict(security_headers(tls))[b"strict-transport-security"] == b"max-age=31536000"
    docs = dict(security_headers({**plain, "path": "/docs"}))
    assert docs[b"content-security-policy"] == DOCS_POLICY.encode()


@pytest_asyncio.fixture
async def server(tmp_path: Path) -> AsyncIterator[str]:
    """The app as `serve` runs it (proxy headers from 127.0.0.1 only), with a dashboard build."""
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text(INDEX)
    (dist / "assets" / "feed.worker-1.js").write_text("self.onmessage = () => {}")
    settings = Settings(web_dist=dist, forwarded_allow_ips="127.0.0.1", host="127.0.0.1", port=0)
    app = create_app(make_runtime([ScriptedFeed([make_instrument()])], settings))
    async with served_as_cli(app, settings) as address:
        yield address


@pytest.mark.asyncio
async def test_every_answer_carries_the_headers(server: str) -> None:
    async with httpx.AsyncClient(base_url=f"http://{server}") as http:
        answers = {
            "page": await http.get("/", headers={"Accept": "text/html"}),
            "worker": await http.get("/assets/feed.worker-1.js"),
            "json": await http.get("/api/v1/instruments"),
            "problem": await http.get("/api/v1/book/test/NOPE-USD"),
            "missing": await http.get("/no/such/route"),
            "probe": await http.get("/livez"),
        }
        docs = await http.get("/docs")
    for what, answer in answers.items():
        headers = answer.headers
        assert headers["x-content-type-options"] == "nosniff", what
        assert headers["referrer-policy"] == "no-referrer", what
        assert headers["x-frame-options"] == "DENY", what
        policy = directives(headers["content-security-policy"])
        assert policy["connect-src"] == f"'self' ws://{server} wss://{server}", what
        assert policy["frame-ancestors"] == "'none'", what
        assert "strict-transport-security" not in headers, what
    assert answers["page"].text == INDEX and answers["problem"].status_code == 404
    assert docs.status_code == 200 and docs.headers["content-security-policy"] == DOCS_POLICY
    assert "cdn.jsdelivr.net" in docs.text  # what the docs policy lets in


@pytest.mark.asyncio
async def test_hsts_behind_a_trusted_tls_proxy_only(server: str) -> None:
    """uvicorn takes X-Forwarded-Proto from `forwarded_allow_ips` only (here 127.0.0.1)."""
    async with httpx.AsyncClient(base_url=f"http://{server}") as http:
        proxied = await http.get("/api/v1/instruments", headers={"X-Forwarded-Proto": "https"})
        assert proxied.headers["strict-transport-security"] == "max-age=31536000"
        direct = await http.get("/api/v1/instruments")
        assert "strict-transport-security" not in direct.headers


@pytest.mark.asyncio
async def test_a_spoofed_forwarded_proto_does_not_turn_on_hsts(tmp_path: Path) -> None:
    settings = Settings(web_dist=None, forwarded_allow_ips="10.9.9.9", host="127.0.0.1", port=0)
    app = create_app(make_runtime([ScriptedFeed([make_instrument()])], settings))
    async with served_as_cli(app, settings) as address:
        async with httpx.AsyncClient(base_url=f"http://{address}") as http:
            spoofed = await http.get("/livez", headers={"X-Forwarded-Proto": "https"})
        assert spoofed.status_code == 200
        assert "strict-transport-security" not in spoofed.headers


@pytest.mark.asyncio
async def test_an_unhandled_error_is_a_problem_with_the_headers_too(tmp_path: Path) -> None:
    """Starlette answers a crash from its outermost middleware, outside ours: the 500 still
    carries the security headers (and says nothing of the error itself)."""
    settings = Settings(web_dist=None, host="127.0.0.1", port=0)
    built = make_runtime([ScriptedFeed([make_instrument()])], settings)

    def broken() -> Any:
        raise RuntimeError("secret internals")

    built.read_model.instruments = broken  # type: ignore[method-assign]  # the injected fault
    app = create_app(built)
    async with served_as_cli(app, settings, "critical") as address:
        async with httpx.AsyncClient(base_url=f"http://{address}") as http:
            answer = await http.get("/api/v1/instruments")
    assert answer.status_code == 500
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["code"] == "internal-error" and "secret" not in answer.text
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["x-frame-options"] == "DENY"
    assert directives(answer.headers["content-security-policy"])["frame-ancestors"] == "'none'"
