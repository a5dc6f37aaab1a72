"""Notify's HTTP API: delivery status, gateway delivery reports, opt-outs, trigger toggles
(office heads and digests: ``digest.api``; reports and the dashboard: ``reports.api``).

Access, by the keys intake issues (notify checks them against its own copy; 401 without
a live key, 403 for a role not allowed, admin passes every role):

- ``GET /api/v1/notifications`` (a dossier's messages, to its citizen and its office
  head): viewer or counter;
- ``POST /api/v1/notifications/delivery-reports``: the SMS gateway's callback; gateways
  carry none of our keys, so it takes the shared secret ``MOTCUA_NOTIFY_SMS_REPORT_TOKEN``
  in the ``X-Report-Token`` header instead (the references it names are our message keys,
  which can be guessed); a token in the URL is refused, since URLs are logged;
- ``POST /api/v1/notifications/opt-outs``: counter (a clerk records the citizen's request);
- ``GET /api/v1/notifications/toggles``: any live key; ``PUT``: admin;
- office heads and digests: admin (``digest.api``);
- reports and ``/dashboard``: public, except recomputing them: admin (``reports.api``).
"""

from __future__ import annotations

import hmac
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Query
from pydantic import BaseModel, Field, model_validator

from services.notify.app import Notifier, build
from services.notify.digest import Digests
from services.notify.digest.api import router as digest_router
from services.notify.domain import ANY, Trigger
from services.notify.reports.api import Reports
from services.notify.reports.api import router as reports_router
from services.notify.settings import NotifySettings
from shared.auth import Authenticator, Role
from shared.clock import Clock, in_vietnam, utc_now
from shared.keys_sync import key_lookup
from shared.service import create_http_app
from shared.settings import Settings, get_settings

REPORT_TOKEN_HEADER = "X-Report-Token"
"""Where the SMS gateway puts the delivery-report secret."""


def _vn(value: datetime | None) -> datetime | None:
    return value and in_vietnam(value)


class MessageOut(BaseModel):
    """A message's delivery status (no recipient, no text: those are personal data).

    Messages of a dossier are the citizen's and the office head's warning about it
    (trigger ``office_warning``)."""

    key: str
    trigger: str
    channel: str
    status: str = Field(
        description="queued | sending | sent | delivered | failed | unknown | suppressed "
        "(the citizen opted out) | superseded (no longer true when its turn came: the "
        "dossier's processing ended first; never sent)"
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


_NEEDS_KEY: dict[int | str, dict[str, Any]] = {401: {"description": "No live API key."}}
_NEEDS_ROLE: dict[int | str, dict[str, Any]] = {
    **_NEEDS_KEY,
    403: {"description": "The key's role may not do this."},
}


def router(notifier: Notifier, auth: Authenticator) -> APIRouter:
    """The notification endpoints (see the module for who may call which)."""
    api = APIRouter(prefix="/api/v1/notifications", tags=["notifications"])
    message_reader = auth.require(Role.VIEWER, Role.COUNTER)
    clerk = auth.require(Role.COUNTER)
    any_key = auth.require()
    admin = auth.require(Role.ADMIN)

    @api.get(
        "",
        response_model=list[MessageOut],
        dependencies=[Depends(message_reader)],
        responses=_NEEDS_ROLE,
    )
    async def list_notifications(
        dossier: Annotated[str, Query(description="Dossier code.")],
    ) -> list[MessageOut]:
        """The messages of one dossier and their delivery status (viewer or counter key)."""
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

    @api.post(
        "/delivery-reports",
        status_code=204,
        responses={
            400: {"description": "A token in the URL: it goes in the X-Report-Token header."},
            401: {"description": "The token is missing or wrong."},
            404: {"description": "No message sent, or being sent, has this reference."},
            503: {"description": "Delivery reports are not configured (no token set)."},
        },
    )
    async def delivery_report(
        report: DeliveryReport,
        token: Annotated[
            str,
            Header(
                alias=REPORT_TOKEN_HEADER,
                description="The shared secret MOTCUA_NOTIFY_SMS_REPORT_TOKEN.",
            ),
        ] = "",
        token_in_url: Annotated[str | None, Query(alias="token", include_in_schema=False)] = None,
    ) -> None:
        """The SMS gateway's callback: delivered to the handset, or not.

        The gateway carries none of our keys; it sends the shared secret in the
        ``X-Report-Token`` header instead (compared in constant time). The old form, the
        secret as ``?token=`` in the URL, is refused (400) without looking at it: URLs end
        up in access logs, so a secret that travelled there must be changed. The reference
        is the message key notify sent as the gateway's reference id. A report may come
        before notify has recorded the send itself; it is taken, and kept.
        """
        expected = notifier.settings.sms_report_token.get_secret_value()
        if not expected:
            raise HTTPException(503, "delivery reports are off: set MOTCUA_NOTIFY_SMS_REPORT_TOKEN")
        if token_in_url is not None:
            raise HTTPException(
                400,
                f"token: send it in the {REPORT_TOKEN_HEADER} header, never in the URL "
                "(URLs are logged: change a secret that was sent there)",
            )
        if not hmac.compare_digest(token.encode(), expected.encode()):
            raise HTTPException(401, "token: not the delivery-report secret")
        if not await notifier.delivery_report(
            report.reference, report.status == "delivered", report.reason
        ):
            raise HTTPException(404, "no message sent or being sent with this reference")

    @api.post("/opt-outs", dependencies=[Depends(clerk)], responses=_NEEDS_ROLE)
    async def opt_out(body: OptOutIn) -> dict[str, int]:
        """A citizen's opt-out, recorded by a clerk (counter key); queued messages it
        covers are suppressed."""
        return {"suppressed": await notifier.opt_out(dossier=body.dossier, contact=body.contact)}

    @api.get("/toggles", dependencies=[Depends(any_key)], responses=_NEEDS_KEY)
    async def list_toggles() -> list[ToggleIn]:
        """Every trigger toggle set (anything not listed is on); any live key."""
        return [
            ToggleIn(trigger=Trigger(t), enabled=on, procedure_code=p, receiving_unit=u)
            for (p, u, t), on in sorted((await notifier.toggles()).items())
        ]

    @api.put("/toggles", status_code=204, dependencies=[Depends(admin)], responses=_NEEDS_ROLE)
    async def put_toggle(body: ToggleIn) -> None:
        """Switch a trigger on or off for a procedure and unit (admin key)."""
        await notifier.set_toggle(
            body.trigger, body.enabled, procedure=body.procedure_code, unit=body.receiving_unit
        )

    return api


def create_app(
    settings: Settings | None = None,
    notify: NotifySettings | None = None,
    clock: Clock = utc_now,
) -> FastAPI:
    """Notify's process: consumer, dispatcher, HTTP API (behind the keys intake issues, as
    notify's copy of them holds them)."""
    notifier = build(settings or get_settings(), notify, clock=clock)
    auth = Authenticator(key_lookup(notifier.runtime.db))
    reports = Reports(notifier.runtime, clock=notifier.clock)
    digests = Digests(notifier)
    return create_http_app(
        notifier.runtime,
        title="motcua notify",
        description="Messages to citizens, the early / on-time / late reports, the office "
        "heads' digest.",
        routers=[
            router(notifier, auth),
            digest_router(digests, auth),
            reports_router(reports, auth),
        ],
        background=[notifier.dispatch_forever, reports.gauges_forever, digests.schedule_forever],
    )
