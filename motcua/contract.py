"""The AsyncAPI document of every topic, generated from the services' brokers."""

from __future__ import annotations

import json
from typing import Any

from faststream.specification import AsyncAPI

from shared.settings import Settings


def asyncapi_document() -> dict[str, Any]:
    """AsyncAPI 3.0 of all five services (publishers and subscribers), as JSON data."""
    from services.intake.process import build as build_intake  # noqa: PLC0415
    from services.notify.process import build as build_notify  # noqa: PLC0415
    from services.portal.process import build as build_portal  # noqa: PLC0415
    from services.routing.process import build as build_routing  # noqa: PLC0415
    from services.sla.process import build as build_sla  # noqa: PLC0415

    settings = Settings(database_url="sqlite+aiosqlite:///:memory:")
    brokers = [
        build(settings).runtime.broker
        for build in (build_intake, build_routing, build_sla, build_notify, build_portal)
    ]
    spec = AsyncAPI(
        *brokers,
        title="motcua events",
        version="1",
        description="The event contract of motcua: topics, keys, envelopes.",
    )
    document: dict[str, Any] = spec.to_specification().to_jsonable()
    return document


def asyncapi_json() -> str:
    """The document as committed in ``docs/asyncapi.json`` (stable key order)."""
    return json.dumps(asyncapi_document(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
