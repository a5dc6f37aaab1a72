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
# annotations, and ``Depends(clerk)`` names a variable local to its route group.

import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Query

from services.notify import process
from services.notify.app import Notifier
from services.notify.digest.api import router as digest_router
from services.notify.domain import Trigger
from services.notify.reports.api import router as reports_router
from services.notify.settings import NotifySettings
from services.notify.views import DeliveryReport, MessageOut, OptOutIn, ToggleIn, message_out
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
from shared.clock import Clock, utc_now
from shared.errors import Forbidden, NotFound, Unavailable
from shared.keys_sync import key_lookup
from shared.service import create_http_app
from shared.settings import Settings, get_settings

REPORT_TOKEN_HEADER = "X-Report-Token"
"""Where the SMS gateway puts the delivery-report secret."""

_NEEDS_KEY: dict[int | str, dict[str, Any]] = {401: {"description": "No live API key."}}
_NEEDS_ROLE: dict[int | str, dict[str, Any]] = {
    **_NEEDS_KEY,
    403: {"description": "The key's role may not do this."},
}


def router(notifier: Notifier, auth: Authenticator) -> APIRouter:
    """The notification endpoints (see the module for who may call which)."""
    api = APIRouter(prefix="/api/v1/notifications", tags=["notifications"])
    _message_routes(api, notifier, auth)
    _delivery_report_route(api, notifier)
    _opt_out_routes(api, notifier, auth)
    _toggle_routes(api, notifier, auth)
    return api


async def _reach(notifier: Notifier, principal: Principal, code: str, access: Access) -> None:
    """``shared.auth``'s rule on the dossier's receiving unit (notify knows no other part):
    404, as for a dossier notify never heard of, unless the key reaches it. An admin or
    all-unit key reaches even a dossier notify has no addressee for."""
    unit = await notifier.receiving_unit(code)
    if not may_reach(principal, access, DossierUnits.of(unit)):
        raise dossier_not_found(code)


async def _check_opt_out(notifier: Notifier, principal: Principal, body: OptOutIn) -> None:
    """A unit's clerk opts out (or back in) the dossiers its unit received, and the
    applicant's own phone or e-mail named with such a dossier; a bare contact, every
    dossier of it nationwide, needs an admin key (403)."""
    if body.dossier:
        await _reach(notifier, principal, body.dossier, Access.COUNTER_ACTION)
    if not body.contact or may(principal, Access.CONTACT_OPT_OUT):
        return
    if not body.dossier or not await notifier.is_applicant_contact(body.dossier, body.contact):
        raise Forbidden("contact: only the applicant's own, named with their dossier")


def _message_routes(api: APIRouter, notifier: Notifier, auth: Authenticator) -> None:
    """``GET /api/v1/notifications`` (a dossier's messages): viewer or counter of the unit
    that received it."""
    message_reader = auth.require(Role.VIEWER, Role.COUNTER)

    @api.get("", response_model=list[MessageOut], responses={**_NEEDS_ROLE, 404: {}})
    async def list_notifications(
        dossier: Annotated[str, Query(description="Dossier code.")],
        principal: Annotated[Principal, Depends(message_reader)],
    ) -> list[MessageOut]:
        """The messages of one dossier and their delivery status (viewer or counter key
        of the unit that received it)."""
        await _reach(notifier, principal, dossier, Access.READ)
        return [message_out(row) for row in await notifier.for_dossier(dossier)]


def _check_report_token(expected: str, token: str, token_in_url: str | None) -> None:
    """503 when delivery reports are off (no token set), 400 for a token in the URL
    (not even looked at), 401 for a wrong one (compared in constant time)."""
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


def _delivery_report_route(api: APIRouter, notifier: Notifier) -> None:
    """``POST /delivery-reports``: the SMS gateway, with the shared secret."""

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
        _check_report_token(expected, token, token_in_url)
        if not await notifier.delivery_report(
            report.reference, report.status == "delivered", report.reason
        ):
            raise NotFound("no message sent or being sent with this reference")


def _opt_out_routes(api: APIRouter, notifier: Notifier, auth: Authenticator) -> None:
    """``POST /opt-outs`` and ``/opt-outs/undo``: counter of the dossier's unit (a bare
    contact: admin)."""
    clerk = auth.require(Role.COUNTER)

    @api.post("/opt-outs", responses={**_NEEDS_ROLE, 404: {}})
    async def opt_out(
        body: OptOutIn, principal: Annotated[Principal, Depends(clerk)]
    ) -> dict[str, int]:
        """A citizen's opt-out, recorded by a clerk (counter key of the dossier's unit; a
        bare contact: admin); queued messages it covers are suppressed."""
        await _check_opt_out(notifier, principal, body)
        return {"suppressed": await notifier.opt_out(dossier=body.dossier, contact=body.contact)}

    @api.post("/opt-outs/undo", responses={**_NEEDS_ROLE, 404: {}})
    async def undo_opt_out(
        body: OptOutIn, principal: Annotated[Principal, Depends(clerk)]
    ) -> dict[str, int]:
        """Withdraw a citizen's opt-out, recorded by a clerk (counter key): the same body
        as the opt-out (a POST, so that a phone or e-mail never travels in a URL, which is
        logged), under the same rule. ``removed`` 0: none was recorded. Messages already
        suppressed stay so."""
        await _check_opt_out(notifier, principal, body)
        return {"removed": await notifier.undo_opt_out(dossier=body.dossier, contact=body.contact)}


def _toggle_routes(api: APIRouter, notifier: Notifier, auth: Authenticator) -> None:
    """``GET /toggles``: any live key; ``PUT /toggles``: admin."""
    any_key = auth.require()
    admin = auth.require(Role.ADMIN)

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


def create_app(
    settings: Settings | None = None,
    notify: NotifySettings | None = None,
    clock: Clock = utc_now,
) -> FastAPI:
    """Notify's process (``process.build``): consumer, dispatcher, HTTP API (behind the keys
    intake issues, as notify's copy of them holds them)."""
    built = process.build(settings or get_settings(), notify, clock=clock)
    notifier, reports, digests = built.notifier, built.reports, built.digests
    auth = Authenticator(key_lookup(built.runtime.db))
    return create_http_app(
        built.runtime,
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
