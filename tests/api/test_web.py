from pathlib import Path

import httpx
import pytest

from helpers import ScriptedFeed, make_instrument, make_runtime, serve_in_loop
from quantsaas.api.app import create_app
from quantsaas.config import Settings

INDEX = "<!doctype html><title>dash</title><div id=root></div>"


def make_dist(root: Path) -> Path:
    dist = root / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text(INDEX)
    (dist / "assets" / "app-123.js").write_text("console.log('app')")
    (dist / "manifest.webmanifest").write_text('{"name": "dash"}')
    return dist


async def get(settings: Settings, path: str, accept: str | None = None) -> httpx.Response:
    app = create_app(make_runtime([ScriptedFeed([make_instrument()])], settings))
    headers = {"Accept": accept} if accept else {}
    async with serve_in_loop(app) as address:
        async with httpx.AsyncClient(base_url=f"http://{address}") as client:
            return await client.get(path, headers=headers)


@pytest.mark.asyncio
async def test_browsers_get_the_dashboard_and_api_clients_get_json(tmp_path: Path) -> None:
    settings = Settings(web_dist=make_dist(tmp_path))
    page = await get(settings, "/", "text/html,application/xhtml+xml,*/*;q=0.8")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.text == INDEX
    assert (await get(settings, "/")).json()["service"] == "quant-saas"  # httpx: */*
    assert (await get(settings, "/", "application/json")).json()["service"] == "quant-saas"
    asset = await get(settings, "/assets/app-123.js")
    assert asset.status_code == 200 and asset.text == "console.log('app')"
    assert "javascript" in asset.headers["content-type"]
    manifest = await get(settings, "/manifest.webmanifest")
    assert manifest.json() == {"name": "dash"}
    assert (await get(settings, "/assets/missing.js")).status_code == 404
    assert (await get(settings, "/health")).headers["content-type"] == "application/json"


@pytest.mark.asyncio
async def test_without_a_build_the_root_stays_json(tmp_path: Path) -> None:
    settings = Settings(web_dist=tmp_path / "nothing")
    response = await get(settings, "/", "text/html")
    assert response.json()["service"] == "quant-saas"
    assert (await get(settings, "/assets/app-123.js")).status_code == 404


@pytest.mark.asyncio
async def test_the_page_tells_the_script_whether_a_session_cookie_came_along(
    tmp_path: Path,
) -> None:
    """The session cookie is HttpOnly: the page gets a readable hint, so an anonymous visitor's
    dashboard never asks /api/v1/account or /api/v1/ws-ticket (401s logged as denials)."""
    settings = Settings(web_dist=make_dist(tmp_path))
    app = create_app(make_runtime([ScriptedFeed([make_instrument()])], settings))
    html = {"Accept": "text/html"}
    async with serve_in_loop(app) as address:
        async with httpx.AsyncClient(base_url=f"http://{address}") as client:
            anonymous = await client.get("/", headers=html)
            signed_in = await client.get("/", headers={**html, "Cookie": "qs_session=abc"})
            stale = await client.get("/", headers={**html, "Cookie": "qs_signed_in=1"})
            api = await client.get("/api/v1/instruments", headers={"Cookie": "qs_session=abc"})
    assert "set-cookie" not in anonymous.headers
    hint = signed_in.headers["set-cookie"]
    assert hint.startswith("qs_signed_in=1;") and "HttpOnly" not in hint
    assert "SameSite=strict" in hint and "Path=/" in hint
    assert stale.headers["set-cookie"].startswith('qs_signed_in="";')
    assert "Max-Age=0" in stale.headers["set-cookie"]
    assert "set-cookie" not in api.headers  # only the page mirrors it
