"""Swagger UI at ``/docs`` with its script, style sheet and icon served by the app itself.

FastAPI's own ``/docs`` loads Swagger UI from a CDN, so it is a blank page on a machine
without internet access (a counter's LAN, a test runner). Here the files come from the
``swagger-ui-bundle-v2`` package, which ships Swagger UI's release files unchanged.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

__all__ = ["DOCS_URL", "SWAGGER_UI_ASSETS_URL", "serve_api_docs"]

DOCS_URL = "/docs"
SWAGGER_UI_ASSETS_URL = f"{DOCS_URL}/static"


def serve_api_docs(app: FastAPI, *, title: str, openapi_url: str = "/openapi.json") -> None:
    """Add ``/docs`` and its assets under ``/docs/static`` to ``app``.

    The app must be created with ``docs_url=None``. Call this before adding any catch-all
    route: the assets are a mount, matched in the order routes were added.
    """
    app.mount(
        SWAGGER_UI_ASSETS_URL, StaticFiles(directory=swagger_ui_path), name="swagger-ui-assets"
    )

    @app.get(DOCS_URL, include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=title,
            swagger_js_url=f"{SWAGGER_UI_ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{SWAGGER_UI_ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{SWAGGER_UI_ASSETS_URL}/favicon-32x32.png",
        )
