"""``/docs`` of the gateway and of every service loads Swagger UI from the app itself.

The page must name only local URLs for its script, style sheet and icon, and each of them
must answer with the right content type: a page that points at a CDN is blank offline.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI

from motcua.gateway import create_gateway
from services.intake.api import create_app as intake_app
from services.notify.api import create_app as notify_app
from services.routing.api import create_app as routing_app
from services.sla.api import create_app as sla_app
from shared.settings import Settings

APPS: dict[str, Callable[[Path], FastAPI]] = {
    "gateway": lambda _var_dir: create_gateway({}),
    "intake": lambda var_dir: intake_app(Settings(var_dir=var_dir)),
    "routing": lambda var_dir: routing_app(Settings(var_dir=var_dir)),
    "sla": lambda var_dir: sla_app(Settings(var_dir=var_dir)),
    "notify": lambda var_dir: notify_app(Settings(var_dir=var_dir)),
}


class AssetLinks(HTMLParser):
    """The URLs a page loads: ``<script src>`` and ``<link href>``."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        wanted = {"script": "src", "link": "href"}.get(tag)
        for name, value in attrs:
            if name == wanted and value:
                self.urls.append(value)


@pytest.fixture(params=list(APPS))
async def client(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the app in memory (no lifespan: /docs needs no broker nor database)."""
    app = APPS[request.param](tmp_path)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://motcua") as http:
        yield http


async def test_docs_loads_swagger_ui_from_the_app_itself(client: httpx.AsyncClient) -> None:
    page = await client.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    links = AssetLinks()
    links.feed(page.text)
    assert len(links.urls) == 3  # the style sheet, the icon, the script

    kinds: set[str] = set()
    for url in links.urls:
        parts = urlsplit(url)
        assert (parts.scheme, parts.netloc) == ("", ""), f"{url} is not served by the app"
        assert url.startswith("/docs/static/")
        asset = await client.get(url)
        assert asset.status_code == 200, url
        kind = asset.headers["content-type"].split(";")[0]
        kinds.add(kind)
        assert int(asset.headers["content-length"]) > 0
    assert kinds in (
        {"text/javascript", "text/css", "image/png"},
        {"application/javascript", "text/css", "image/png"},  # older mimetypes tables
    )
    assert "http" not in page.text  # nothing else on the page reaches out either
    assert (await client.get("/redoc")).status_code == 404  # ReDoc would need a CDN
