"""``shared.paging``: the ``Link`` header of a page, and the headers on a response."""

from __future__ import annotations

import pytest
from fastapi import Request, Response
from starlette.datastructures import URL

from shared.paging import DEFAULT_LIMIT, Page, link_header, page_query, set_page_headers

LIST = URL("http://routing:8002/api/v1/things?kind=a&limit=2")


def test_the_first_page_links_only_to_the_next() -> None:
    assert (
        link_header(LIST, Page(2, 0), 5) == '</api/v1/things?kind=a&limit=2&offset=2>; rel="next"'
    )


def test_a_middle_page_links_both_ways() -> None:
    assert link_header(LIST, Page(2, 2), 5) == (
        '</api/v1/things?kind=a&limit=2&offset=4>; rel="next", '
        '</api/v1/things?kind=a&limit=2&offset=0>; rel="prev"'
    )


@pytest.mark.parametrize(
    ("page", "total", "prev"),
    [
        (Page(2, 4), 5, 2),  # the last page, short
        (Page(2, 1), 3, 0),  # an offset off the grid: prev starts at the first item
        (Page(2, 10), 5, 3),  # past the end: prev is the last page, not another empty one
        (Page(2, 3), 0, 0),  # nothing at all
    ],
)
def test_past_the_last_item_there_is_no_next(page: Page, total: int, prev: int) -> None:
    assert link_header(LIST, page, total) == (
        f'</api/v1/things?kind=a&limit=2&offset={prev}>; rel="prev"'
    )


@pytest.mark.parametrize(("page", "total"), [(Page(2, 0), 2), (Page(2, 0), 1), (Page(2, 0), 0)])
def test_a_single_page_has_no_link(page: Page, total: int) -> None:
    assert link_header(LIST, page, total) is None


def test_only_limit_and_offset_are_replaced() -> None:
    url = URL("http://h/api/v1/x?offset=9&q=Th%E1%BB%A7+t%E1%BB%A5c&limit=1&limit=7&tag=a&tag=b")
    assert link_header(url, Page(3, 0), 10) == (
        '</api/v1/x?q=Th%E1%BB%A7+t%E1%BB%A5c&tag=a&tag=b&limit=3&offset=3>; rel="next"'
    )


def test_page_query_defaults_to_the_first_page() -> None:
    assert page_query() == Page(DEFAULT_LIMIT, 0)


def test_the_headers_go_on_the_response() -> None:
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/api/v1/things",
        "query_string": b"limit=2",
        "headers": [(b"host", b"routing")],
    }
    response = Response()
    set_page_headers(Request(scope), response, Page(2, 0), 3)
    assert response.headers["X-Total-Count"] == "3"
    assert response.headers["Link"] == '</api/v1/things?limit=2&offset=2>; rel="next"'

    last = Response()
    set_page_headers(Request(scope), last, Page(2, 0), 2)
    assert last.headers["X-Total-Count"] == "2"
    assert "Link" not in last.headers
