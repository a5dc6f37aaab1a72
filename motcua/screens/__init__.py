"""The screens of the counter, the kiosk, the board, the office and the citizen, served by
the gateway (``motcua.gateway``) as static files: HTML, one style sheet and vanilla
scripts, no build step and nothing fetched from elsewhere.

The pages are clients of the public API like any other: their scripts call
``/api/v1/...`` on the same origin, with the key the user typed in, kept in the tab's
``sessionStorage`` and sent in the ``X-API-Key`` header only (never in a URL, so never in
a log). No service is reached but through the gateway's routes.

Invariants: every page is answered with ``Cache-Control: no-store`` and a content
security policy that allows this origin only (no CDN, no inline script); a page name not
in ``PAGES`` is not served here (it falls through to the gateway's 404).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).resolve().parent / "static"

PAGES: dict[str, str] = {
    "/app/counter": "counter.html",
    "/app/kiosk": "kiosk.html",
    "/app/board": "board.html",
    "/app/office": "office.html",
    "/tra-cuu": "lookup.html",
}
"""Path of each screen -> its HTML file under ``static/``."""

PRINT_HANDLER = "sha256-MguIPR6qNR8D3B+eAlK+bIRTZe8t3wkOY4B/56Me9FU="
"""The CSP hash of ``window.print()``, the slip's print button (intake's slip.html.j2)."""

SECURITY_HEADERS: dict[str, str] = {
    "Cache-Control": "no-store",
    # The slip is shown from a blob: URL, in a frame, under this policy: its styles are
    # inline, and its print button's one handler, "window.print()", is allowed by hash.
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self' 'unsafe-hashes' "
        f"'{PRINT_HANDLER}'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data: blob:; frame-src 'self' blob:; object-src 'none'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


def mount_screens(app: FastAPI) -> None:
    """Add the screens' routes to ``app``: each page of ``PAGES`` and ``/app/static/*``.
    Call it before any catch-all route, so that these paths are matched first."""
    for path, filename in PAGES.items():
        _add_page(app, path, STATIC / filename)
    app.mount("/app/static", StaticFiles(directory=STATIC), name="screens-static")


def _add_page(app: FastAPI, path: str, file: Path) -> None:
    async def page() -> FileResponse:
        return FileResponse(file, media_type="text/html", headers=SECURITY_HEADERS)

    app.add_api_route(path, page, methods=["GET"], include_in_schema=False, name=file.stem)
