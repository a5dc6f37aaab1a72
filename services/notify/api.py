"""Notify's HTTP API: delivery status, gateway delivery reports, opt-outs, trigger toggles
(office heads and digests: ``digest.api``; reports and the dashboard: ``reports.api``).

Access, by the keys intake issues (notify checks them against its own copy; 401 without
a live key, 403 for a role not allowed, admin passes every role):

- ``GET /api/v1/notifications`` (a dossier's messages, to its citizen and its office
  head): viewer or counter of the unit that received it (``shared.auth``'s rule: another
  unit's dossier answers 404, as an unknown one);
- ``POST /api/v1/notifications/delivery-reports``: the SMS gateway's callback; gateways
  carry none of our keys, so it takes the shared secret ``MOTCUA_NOTIFY_SMS_REPORT_TOKEN``
  in the ``X-Report-Token`` header instead (the references it names are our message keys,
  which can be guessed); a token in the URL is refused, since URLs are logged;
- ``POST /api/v1/notifications/opt-outs`` and ``.../opt-outs/undo``: counter of the unit
  that received the dossier (a clerk records the citizen's request, or its withdrawal),
  with the applicant's own contact if any; a bare contact (every dossier of a phone or
  e-mail, nationwide): admin;
- ``GET /api/v1/notifications/toggles``: any live key; ``PUT``: admin;
- office heads and digests: admin (``digest.api``);
- reports and ``/dashboard``: public, except recomputing them: admin (``reports.api``).
"""

# No ``from __future__ import annotations`` here: FastAPI evaluates the endpoints'
# annotations, and ``Depends(clerk)`` names a variable local to ``router``.

import hmac
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.notify.app import Notifier, build
from services.notify.digest import Digests
from services.notify.digest.api import router as digest_router
from services.notify.domain import ANY, Trigger
from services.notify.reports.api import Reports
from services.notify.reports.api import router as reports_router
from services.notify.settings import NotifySettings
from shared.auth import (
    Access,
    Authenticator,
    DossierUnits,
    Principal,
    Role,
    dossier_not_found,
    may,
    may_reach,
)
from shared.clock import Clock, in_vietnam, in_vietnam_or_none, utc_now
from shared.errors import Forbidden, NotFound, Unavailable
from shared.keys_sync import key_lookup
from shared.service import create_http_app
from shared.settings import Settings, get_settings

REPORT_TOKEN_HEADER = "X-Report-Token"
"""Where the SMS gateway puts the delivery-report secret."""


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

    model_config = ConfigDict(extra="forbid")

    reference: str = Field(min_length=1, max_length=160)
    status: Literal["delivered", "failed"]
    reason: str | None = Field(None, max_length=300)


class OptOutIn(BaseModel):
    """Stop messages for one dossier, or for every dossier of one phone or e-mail."""

    model_config = ConfigDict(extra="forbid")

    dossier: str | None = Field(None, min_length=1, max_length=60)
    contact: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        description="Phone or e-mail; stored only as a keyed fingerprint (HMAC-SHA256).",
    )

    @model_validator(mode="after")
    def _one_target(self) -> "OptOutIn":
        if not (self.dossier or self.contact):
            msg = "give a dossier or a contact"
            raise ValueError(msg)
        return self


class ToggleIn(BaseModel):
    """Switch a trigger on or off for a procedure and a receiving unit (``*``: any)."""

    model_config = ConfigDict(extra="forbid")

    trigger: Trigger
    enabled: bool
    procedure_code: str = Field(ANY, min_length=1, max_length=40)
    receiving_unit: str = Field(ANY, min_length=1, max_length=60)


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

    async def reach(principal: Principal, code: str, access: Access) -> None:
        """``shared.auth``'s rule on the dossier's receiving unit (notify knows no other
        part): 404, as for a dossier notify never heard of, unless the key reaches it. An
        admin or all-unit key reaches even a dossier notify has no addressee for."""
        unit = await notifier.receiving_unit(code)
        if not may_reach(principal, access, DossierUnits.of(unit)):
            raise dossier_not_found(code)

    async def check_opt_out(principal: Principal, body: OptOutIn) -> None:
        """A unit's clerk opts out (or back in) the dossiers its unit received, and the
        applicant's own phone or e-mail named with such a dossier; a bare contact, every
        dossier of it nationwide, needs an admin key (403)."""
        if body.dossier:
            await reach(principal, body.dossier, Access.COUNTER_ACTION)
        if not body.contact or may(principal, Access.CONTACT_OPT_OUT):
            return
        if not body.dossier or not await notifier.is_applicant_contact(body.dossier, body.contact):
            raise Forbidden("contact: only the applicant's own, named with their dossier")

    @api.get("", response_model=list[MessageOut], responses={**_NEEDS_ROLE, 404: {}})
    async def list_notifications(
        dossier: Annotated[str, Query(description="Dossier code.")],
        principal: Annotated[Principal, Depends(message_reader)],
    ) -> list[MessageOut]:
        """The messages of one dossier and their delivery status (viewer or counter key
        of the unit that received it)."""
        await reach(principal, dossier, Access.READ)
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
                next_attempt_at=in_vietnam_or_none(r.next_attempt_at)
                if r.status == "queued"
                else None,
                sent_at=in_vietnam_or_none(r.sent_at),
                delivered_at=in_vietnam_or_none(r.delivered_at),
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
            raise Unavailable("delivery reports are off: set MOTCUA_NOTIFY_SMS_REPORT_TOKEN")
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
            raise NotFound("no message sent or being sent with this reference")

    @api.post("/opt-outs", responses={**_NEEDS_ROLE, 404: {}})
    async def opt_out(
        body: OptOutIn, principal: Annotated[Principal, Depends(clerk)]
    ) -> dict[str, int]:
        """A citizen's opt-out, recorded by a clerk (counter key of the dossier's unit; a
        bare contact: admin); queued messages it covers are suppressed."""
        await check_opt_out(principal, body)
        return {"suppressed": await notifier.opt_out(dossier=body.dossier, contact=body.contact)}

    @api.post("/opt-outs/undo", responses={**_NEEDS_ROLE, 404: {}})
    async def undo_opt_out(
        body: OptOutIn, principal: Annotated[Principal, Depends(clerk)]
    ) -> dict[str, int]:
        """Withdraw a citizen's opt-out, recorded by a clerk (counter key): the same body
        as the opt-out (a POST, so that a phone or e-mail never travels in a URL, which is
        logged), under the same rule. ``removed`` 0: none was recorded. Messages already
        suppressed stay so."""
        await check_opt_out(principal, body)
        return {"removed": await notifier.undo_opt_out(dossier=body.dossier, contact=body.contact)}

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
        background=[
            notifier.dispatch_forever,
            notifier.purge_forever,
            notifier.release_waiting_forever,
            reports.gauges_forever,
            digests.schedule_forever,
        ],
    )
