"""Intake's HTML: the Jinja templates of this package (autoescaped), and the citizen's
look-up page, where a slip's QR code leads."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

from jinja2 import Environment, Template


@lru_cache(maxsize=4)
def template(name: str) -> Template:
    """The template ``name`` of this package, loaded once."""
    text = resources.files("services.intake").joinpath(name).read_text("utf-8")
    return Environment(autoescape=True).from_string(text)


def render_lookup_page(code: str, lookup: str) -> str:
    """The look-up page with ``code`` filled in (may be empty); its form posts the code and
    the phone as JSON to ``lookup`` and shows the answer's ``status_text`` and
    ``due_text``, or what a refusal (404, 422, 429) means, in Vietnamese."""
    return template("lookup.html.j2").render(code=code, lookup=lookup)
