"""Warnings to offices: the SLA clock's ``apology_needed`` e-mailed to the office head.

A few working hours before a dossier's due time with no result, sla emits
``apology_needed``: the processing office must issue the apology letter (form 4, with a new
date) through the one-stop unit before the due time. The citizen is not told (they hear of
the delay when the office records ``extend``); the office head is, by e-mail:

- the head of the warning's office if one is on file, else the head of the dossier's
  receiving unit (as stored in ``addressee``); neither on file: nothing is queued and
  ``motcua_office_warnings_unaddressed_total`` counts it;
- the e-mail is a ``message`` row under ``domain.office_warning_key`` (one per dossier),
  inserted (one multi-row statement per batch, no ORM object) in the inbox transaction of
  the warning and sent by the dispatcher like every
  message: a warning delivered again queues nothing new;
- it names the dossier code, procedure, due time and working time left, never the
  applicant (the head does not need their name, phone or e-mail).

Every SLA warning received is counted in ``motcua_office_warnings_total{kind,office}``
(office: the unit code sla named, or empty).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from prometheus_client import Counter
from sqlmodel.ext.asyncio.session import AsyncSession

from services.notify import domain, store
from services.notify.render import Renderer
from services.notify.reports.query import procedure_text
from shared.catalogue import Catalogue, seed_catalogue
from shared.clock import Clock
from shared.events import Envelope, SlaWarning, of_type

OFFICE_WARNINGS = Counter(
    "motcua_office_warnings_total",
    "SLA warnings about dossiers, for offices, by kind and warned office (unit code).",
    ["kind", "office"],
)
OFFICE_WARNINGS_UNADDRESSED = Counter(
    "motcua_office_warnings_unaddressed_total",
    "Office warnings not e-mailed because no office head is on file for the unit.",
    ["kind"],
)


class OfficeWarnings:
    """Queues the office heads' warning e-mails; ``apply`` has the inbox ``Apply`` signature."""

    def __init__(
        self,
        renderer: Renderer,
        *,
        clock: Clock,
        catalogue: Callable[[], Catalogue] = seed_catalogue,
    ) -> None:
        self.renderer = renderer
        self.clock = clock
        self._catalogue = catalogue

    async def apply(self, session: AsyncSession, events: Sequence[Envelope]) -> None:
        """Queue one e-mail to the office head per dossier needing the apology letter
        (inside the inbox transaction, after the batch's contacts are stored); a key
        already stored is skipped. One for a dossier whose processing ended in an earlier
        batch (the warning travels on the sla topic, the end on the lifecycle topic) is
        stored ``superseded``: never sent."""
        warnings: list[domain.OfficeWarning] = []
        for sla_warning, envelope in of_type(events, SlaWarning):
            OFFICE_WARNINGS.labels(sla_warning.kind, sla_warning.office or "").inc()
            warning = domain.office_warning_of(envelope)
            if warning is not None:
                warnings.append(warning)
        if not warnings:
            return
        codes = {w.dossier_code for w in warnings}
        dossiers = await store.addressees(session, codes)
        to_try = {
            w.dossier_code: w.heads_to_try(_unit_of(dossiers.get(w.dossier_code))) for w in warnings
        }
        units = {unit for candidates in to_try.values() for unit in candidates}
        heads = await store.heads_of(session, units)
        stored = await store.stored_keys(session, [domain.office_warning_key(c) for c in codes])
        ended = await store.ended_among(session, codes)
        now = self.clock()
        queued: dict[str, dict[str, object]] = {}
        for warning in warnings:
            key = domain.office_warning_key(warning.dossier_code)
            if key in stored or key in queued:
                continue
            head = next((heads[u] for u in to_try[warning.dossier_code] if u in heads), None)
            if head is None:
                OFFICE_WARNINGS_UNADDRESSED.labels(domain.OFFICE_WARNING_KIND).inc()
                continue
            dossier = dossiers.get(warning.dossier_code)
            subject, body = self.renderer.office_warning(
                {
                    **warning.facts(),
                    "code": warning.dossier_code,
                    "head": head.name,
                    "office": warning.office or "",
                    "procedure": procedure_text(dossier.procedure_code, self._catalogue())
                    if dossier
                    else "",
                }
            )
            queued[key] = store.head_email_values(
                key,
                dossier_code=warning.dossier_code,
                trigger=domain.OFFICE_WARNING_TRIGGER,
                recipient=head.email,
                subject=subject,
                body=body,
                now=now,
            )
            if warning.dossier_code in ended:  # the warning came after the result: untrue
                queued[key]["status"] = store.SUPERSEDED
        if queued:
            await store.queue_messages(session, list(queued.values()))


def _unit_of(dossier: domain.Addressee | None) -> str | None:
    return dossier.receiving_unit if dossier else None
