"""Paging of the list routes that can grow without bound: ``limit`` and ``offset`` query
parameters in, one page out, and two headers that say how many there are and where the
neighbouring pages are.

A paged route still answers a JSON list (the page), so a client that knows nothing of
paging reads the first ``DEFAULT_LIMIT`` items as before. Beside the list:

- ``X-Total-Count``: how many items the caller may see in all, across every page;
- ``Link`` (RFC 8288): ``rel="next"`` while items remain after this page, ``rel="prev"``
  when this page does not start at the first item (and no header when neither holds).
  Each target is the request's own path and query with only ``limit`` and ``offset``
  replaced, as a relative reference (RFC 3986: resolved against the request's URL), so
  that it stays right behind the gateway, which forwards paths as they came.

Invariants every paged route keeps (each route's docstring names its order):

- its order is total and stable: a sort on a unique key, or with one as tie-break, so
  that walking ``next`` from ``offset=0`` meets every item once while nothing changes;
- the page and ``X-Total-Count`` come from the same filter: the total counts only what
  the key may see (a foreign unit's items are neither shown nor counted).

``limit`` out of 1..``MAX_LIMIT`` or ``offset`` out of 0..``MAX_OFFSET`` is a 422 that
names the parameter (FastAPI's validation).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Query, Request, Response
from starlette.datastructures import URL

__all__ = [
    "DEFAULT_LIMIT",
    "LINK_HEADER",
    "MAX_LIMIT",
    "MAX_OFFSET",
    "PAGED",
    "TOTAL_HEADER",
    "Page",
    "link_header",
    "page_query",
    "set_page_headers",
]

DEFAULT_LIMIT = 100
MAX_LIMIT = 500
MAX_OFFSET = 2**31 - 1
"""The largest ``offset``: it fits every database's integer (a larger one is a 422, not a
driver's overflow)."""
TOTAL_HEADER = "X-Total-Count"
LINK_HEADER = "Link"

PAGED: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "One page of the list (a JSON list), in the route's stable order.",
        "headers": {
            TOTAL_HEADER: {
                "description": "How many items the key may see in all, across every page.",
                "schema": {"type": "integer", "minimum": 0},
            },
            LINK_HEADER: {
                "description": (
                    'RFC 8288 links: rel="next" while items remain after this page, '
                    'rel="prev" when it does not start at the first; each the request\'s '
                    "path and query with only limit and offset replaced. Absent when "
                    "neither applies."
                ),
                "schema": {"type": "string"},
            },
        },
    }
}
"""The documented 200 of a paged route (merge it into the route's ``responses``)."""


@dataclass(frozen=True, slots=True)
class Page:
    """The page asked for: at most ``limit`` items, after the first ``offset``."""

    limit: int
    offset: int


def page_query(
    limit: Annotated[
        int,
        Query(ge=1, le=MAX_LIMIT, description=f"At most this many items (1 to {MAX_LIMIT})."),
    ] = DEFAULT_LIMIT,
    offset: Annotated[
        int, Query(ge=0, le=MAX_OFFSET, description="Skip this many items first.")
    ] = 0,
) -> Page:
    """A dependency: the page the query asks for (the first ``DEFAULT_LIMIT`` items when
    it names none)."""
    return Page(limit, offset)


def link_header(url: URL, page: Page, total: int) -> str | None:
    """The ``Link`` header of ``page`` out of ``total`` items for a request to ``url``:
    ``next`` while items remain after the page; ``prev`` unless the page starts at the
    first item, to the page before (the last page when ``offset`` is past the end);
    ``None`` when there is neither."""
    links = []
    if page.offset + page.limit < total:
        links.append(_link(url, Page(page.limit, page.offset + page.limit), "next"))
    if page.offset > 0:
        before = max(0, min(page.offset, total) - page.limit)
        links.append(_link(url, Page(page.limit, before), "prev"))
    return ", ".join(links) or None


def _link(url: URL, page: Page, rel: str) -> str:
    """One link-value: ``url``'s path and query with ``limit`` and ``offset`` set to
    ``page``'s (given once, whatever the query repeated) and every other parameter kept."""
    target = url.include_query_params(limit=page.limit, offset=page.offset)
    return f'<{target.path}?{target.query}>; rel="{rel}"'


def set_page_headers(request: Request, response: Response, page: Page, total: int) -> None:
    """Put ``X-Total-Count`` (``total``: what the caller may see) and, when there is a
    page before or after, ``Link`` on the response to ``request`` for ``page``."""
    response.headers[TOTAL_HEADER] = str(total)
    links = link_header(request.url, page, total)
    if links is not None:
        response.headers[LINK_HEADER] = links
