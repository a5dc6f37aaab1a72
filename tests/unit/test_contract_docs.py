"""The committed AsyncAPI document matches the code."""

from __future__ import annotations

import json
from pathlib import Path

from motcua.contract import asyncapi_json
from shared.topics import ALL_TOPICS

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "asyncapi.json"


def test_committed_asyncapi_is_up_to_date() -> None:
    assert COMMITTED.read_text("utf-8") == asyncapi_json(), (
        "docs/asyncapi.json is out of date: run `motcua asyncapi` and commit it"
    )


def test_asyncapi_documents_every_published_topic() -> None:
    document = json.loads(COMMITTED.read_text("utf-8"))
    assert document["asyncapi"].startswith("3.")
    addresses = {channel["address"] for channel in document["channels"].values()}
    for topic in (t for t in ALL_TOPICS if t.name.startswith("motcua.dossier")):
        assert topic.name in addresses
