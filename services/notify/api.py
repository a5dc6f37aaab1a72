"""Notify's HTTP API: delivery status, gateway delivery reports, opt-outs, trigger toggles
(office heads and digests: ``digest.api``)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, FastAPI, HTTPException, Query
from pydantic import BaseModel, Field, model_validator

from services.notify.app import Notifier, build
from services.notify.digest import Digests
from services.notify.digest.api import router as digest_router
from services.notify.domain import ANY, Trigger
from services.notify.reports.api import Reports
from services.notify.reports.api import router as reports_router
from services.notify.settings import NotifySettings
from shared.clock import in_vietnam
from shared.service import create_http_app
from shared.settings import Settings, get_settings


def _vn(value: datetime | None) -> datetime | None:
    return value and in_vietnam(value)


class MessageOut(BaseModel):
    """A message's delivery status (no recipient, no text: those are personal data)."""

    key: str
    trigger: str
    channel: str
    status: str = Field(
        description="queued | sending | sent | delivered | failed | unknown | suppressed"
    )
    attempts: int
    last_error: str | None
    created_at: datetime
    next_attempt_at: datetime | None = Field(description="When a queued message is tried next.")
    sent_at: datetime | None
    delivered_at: datetime | None
    sink: str | None = Field(description="Which sink accepted it (after failover).")


class DeliveryReport(BaseModel):
    """A gateway's report on one SMS, keyed by the reference id we sent (the message key)."""

    reference: str
    status: Literal["delivered", "failed"]
    reason: str | None = None


class OptOutIn(BaseModel):
    """Stop messages for one dossier, or for every dossier of one phone or e-mail."""

    dossier: str | None = None
    contact: str | None = Field(None, description="Phone or e-mail; stored only as a hash.")

    @model_validator(mode="after")
    def _one_target(self) -> OptOutIn:
        if not (self.dossier or self.contact):
            msg = "give a dossier or a contact"
            raise ValueError(msg)
        return self


class ToggleIn(BaseModel):
    """Switch a trigger on or off for a procedure and a receiving unit (``*``: any)."""

    trigger: Trigger
    enabled: bool
    procedure_code: str = ANY
    receiving_unit: str = ANY


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
                last_error=r.last_error,
                created_at=in_vietnam(r.created_at),
                next_attempt_at=_vn(r.next_attempt_at) if r.status == "queued" else None,
                sent_at=_vn(r.sent_at),
                delivered_at=_vn(r.delivered_at),
                sink=r.sink,
            )
            for r in rows
        ]

    @api.post("/delivery-reports", status_code=204)
    async def delivery_report(report: DeliveryReport) -> None:
        """The SMS gateway's callback: delivered to the handset, or not."""
        if not await notifier.delivery_report(
            report.reference, report.status == "delivered", report.reason
        ):
            raise HTTPException(404, "no sent message with this reference")

    @api.post("/opt-outs")
    async def opt_out(body: OptOutIn) -> dict[str, int]:
        """A citizen's opt-out; queued messages it covers are suppressed."""
        return {"suppressed": await notifier.opt_out(dossier=body.dossier, contact=body.contact)}

    @api.get("/toggles")
    async def list_toggles() -> list[ToggleIn]:
        """Every trigger toggle set (anything not listed is on)."""
        return [
            ToggleIn(trigger=Trigger(t), enabled=on, procedure_code=p, receiving_unit=u)
            for (p, u, t), on in sorted((await notifier.toggles()).items())
        ]

    @api.put("/toggles", status_code=204)
    async def put_toggle(body: ToggleIn) -> None:
        """Switch a trigger on or off for a procedure and unit."""
        await notifier.set_toggle(
            body.trigger, body.enabled, procedure=body.procedure_code, unit=body.receiving_unit
        )

    return api


def create_app(settings: Settings | None = None, notify: NotifySettings | None = None) -> FastAPI:
    """Notify's process: consumer, dispatcher, HTTP API."""
    notifier = build(settings or get_settings(), notify)
    reports = Reports(notifier.runtime, clock=notifier.clock)
    digests = Digests(notifier)
    return create_http_app(
        notifier.runtime,
        title="motcua notify",
        description="Messages to citizens, the early / on-time / late reports, the office "
        "heads' digest.",
        routers=[router(notifier), digest_router(digests), reports_router(reports)],
        background=[notifier.dispatch_forever, reports.gauges_forever, digests.schedule_forever],
    )
