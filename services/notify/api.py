"""Notify's HTTP API: delivery status of a dossier's messages."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, FastAPI, Query
from pydantic import BaseModel

from services.notify.app import Notifier, build
from shared.clock import in_vietnam
from shared.service import create_http_app
from shared.settings import Settings, get_settings


class MessageOut(BaseModel):
    """A message's delivery status (no recipient, no text: those are personal data)."""

    key: str
    trigger: str
    channel: str
    status: str
    attempts: int
    created_at: datetime
    sent_at: datetime | None


def router(notifier: Notifier) -> APIRouter:
    """The notification endpoints."""
    api = APIRouter(prefix="/api/v1/notifications", tags=["notifications"])

    @api.get("", response_model=list[MessageOut])
    async def list_notifications(
        dossier: str = Query(description="Dossier code."),
    ) -> list[MessageOut]:
        """The messages of one dossier and their delivery status."""
        rows = await notifier.for_dossier(dossier)
        return [
            MessageOut(
                key=r.key,
                trigger=r.trigger,
                channel=r.channel,
                status=r.status,
                attempts=r.attempts,
                created_at=in_vietnam(r.created_at),
                sent_at=r.sent_at and in_vietnam(r.sent_at),
            )
            for r in rows
        ]

    return api


def create_app(settings: Settings | None = None) -> FastAPI:
    """Notify's process: consumer, dispatcher, HTTP API."""
    notifier = build(settings or get_settings())
    return create_http_app(
        notifier.runtime,
        title="motcua notify",
        description="Messages to citizens and the early / on-time / late reports.",
        routers=[router(notifier)],
        background=[notifier.dispatch_forever],
    )
