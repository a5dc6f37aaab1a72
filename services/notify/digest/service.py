"""The digest's use cases: office heads, queueing a unit's digest, the scheduler.

Exactly once per unit and period: a digest is a row of notify's ``message`` table under
the key ``digest:<unit>:<period>``, inserted with ``ON CONFLICT DO NOTHING`` (so two notify
instances, or the scheduler and the command line, queue it once) and sent by the
dispatcher under the same claim-before-send rule as every message; SMTP is not resend-safe,
so a send interrupted by a crash is ``unknown``, never repeated. The figures and the lists
(dossiers overdue, dossiers needing the apology letter) are taken when the digest is queued
and stored with it.

Heads' names and e-mails are personal data: they are stored and sent, never logged; logs
name units (agency codes) and periods only.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import date, datetime

from services.notify import store
from services.notify.app import Notifier
from services.notify.digest import domain
from services.notify.reports import domain as report
from services.notify.reports import query
from services.notify.reports import store as report_store
from services.notify.reports.store import ReportFact
from shared.calendar import default_calendar
from shared.catalogue import Catalogue
from shared.clock import in_vietnam

log = logging.getLogger(__name__)


class Digests:
    """Office heads and their digests, over notify's database and its dispatcher."""

    def __init__(
        self,
        notifier: Notifier,
        *,
        is_working_day: Callable[[date], bool] | None = None,
        catalogue: Catalogue | None = None,
    ) -> None:
        self.notifier = notifier
        self.runtime = notifier.runtime
        self.settings = notifier.settings
        self.clock = notifier.clock
        self.is_working_day = (
            is_working_day or default_calendar(self.runtime.settings.province).is_working_day
        )
        self._fixed_catalogue = catalogue
        self._told: set[tuple[str, str | None]] = set()

    @property
    def catalogue(self) -> Catalogue:
        """The catalogue digests name procedures with: the one given, else the one notify
        follows (``Notifier.catalogue``)."""
        return self._fixed_catalogue or self.notifier.catalogue()

    # --- office heads -------------------------------------------------------------------

    async def set_head(self, unit: str, *, name: str, email: str) -> None:
        """Record (or replace) the head of ``unit``."""
        async with self.runtime.db.transaction() as session:
            await store.put_head(session, unit, name=name, email=email, now=self.clock())

    async def heads(self) -> list[store.OfficeHead]:
        """Every office head, by unit."""
        async with self.runtime.db.sessions() as session:
            return await store.office_heads(session)

    async def remove_head(self, unit: str) -> bool:
        """Forget the head of ``unit``; ``False`` if none was recorded."""
        async with self.runtime.db.transaction() as session:
            return await store.delete_head(session, unit)

    # --- digests -----------------------------------------------------------------------

    async def queue(self, period: domain.DigestPeriod, *, unit: str | None = None) -> list[str]:
        """Queue the digest of ``period`` for every unit with a head (or only ``unit``);
        return the keys newly queued (none for a digest already queued or sent).

        No head at all (or none for ``unit``): nothing queued, and a log line saying so.
        A unit the period's report counts but no head is recorded for gets no digest and a
        log line naming it. Unit codes only, never personal data; the scheduler's repeated
        rounds say each thing once per process and period.
        """
        now = self.clock()
        today = in_vietnam(now).date()
        async with self.runtime.db.sessions() as session:
            await self.notifier.catalogue.restore(session)
            heads = await store.office_heads(session, unit=unit)
            if not heads:
                self._tell_no_head(period, unit)
                return []
            keys = {domain.digest_key(h.unit, period): h for h in heads}
            stored = await store.stored_keys(session, list(keys))
            if stored == set(keys):
                return []
            rows = await query.sla_report(
                session,
                report.Period(first=period.first, last=period.last, today=today),
                "unit",
                catalogue=self.catalogue,
            )
            counts = {row.key: row.counts for row in rows.rows}
            if unit is None:
                self._tell_headless(period, set(counts) - {h.unit for h in heads})
            limit = self.settings.digest_overdue_limit
            drafts = []
            for key, head in keys.items():
                if key in stored:
                    continue
                overdue = await report_store.overdue_dossiers(
                    session, today, limit + 1, unit=head.unit
                )
                apology = await report_store.needs_apology_dossiers(
                    session, today, limit + 1, unit=head.unit
                )
                drafts.append(
                    self._draft(
                        key,
                        head,
                        period,
                        counts=counts.get(head.unit),
                        overdue=overdue,
                        apology=apology,
                        limit=limit,
                        now=now,
                    )
                )
        return await self._insert(drafts)

    async def run_due(self) -> list[str]:
        """One scheduler round: queue the digests of the period now due, if any."""
        period = domain.due_period(
            self.clock(),
            self.settings.digest_period,
            self.settings.digest_send_at,
            self.is_working_day,
        )
        return [] if period is None else await self.queue(period)

    async def schedule_forever(self) -> None:
        """Run a scheduler round every ``digest_check_seconds`` until cancelled."""
        while True:
            try:
                queued = await self.run_due()
                if queued:
                    log.info("digests queued: %d", len(queued))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("digest scheduling failed: %s", type(exc).__name__)
            await asyncio.sleep(self.settings.digest_check_seconds)

    def _tell_no_head(self, period: domain.DigestPeriod, unit: str | None) -> None:
        if unit is None and (period.label, None) in self._told:
            return
        self._told.add((period.label, None))
        log.info(
            "digest %s: no office head configured%s; no digest queued "
            "(add one with `motcua notify heads add`)",
            period.label,
            f" for unit {unit}" if unit else "",
        )

    def _tell_headless(self, period: domain.DigestPeriod, headless: set[str]) -> None:
        untold = sorted(u for u in headless if (period.label, u) not in self._told)
        if not untold:
            return
        self._told.update((period.label, u) for u in untold)
        log.info(
            "digest %s: no office head for unit(s) %s; their digest is not sent",
            period.label,
            ", ".join(untold),
        )

    def _draft(
        self,
        key: str,
        head: store.OfficeHead,
        period: domain.DigestPeriod,
        *,
        counts: report.Counts | None,
        overdue: Sequence[ReportFact],
        apology: Sequence[ReportFact],
        limit: int,
        now: datetime,
    ) -> tuple[store.Message, store.MessageHtml]:
        context: dict[str, object] = {
            "head": head.name,
            "unit": head.unit,
            "period": period.title,
            "first": f"{period.first:%d/%m/%Y}",
            "last": f"{period.last:%d/%m/%Y}",
            "as_of": f"{in_vietnam(now):%H:%M %d/%m/%Y}",
            "f": domain.figures(counts or report.Counts()),
            "overdue": [self._line(fact) for fact in overdue[:limit]],
            "overdue_more": len(overdue) > limit,
            "apology": [self._line(fact) for fact in apology[:limit]],
            "apology_more": len(apology) > limit,
        }
        subject, body, html = self.notifier.renderer.digest(context)
        message = store.email_to_head(
            key,
            dossier_code="",
            trigger=domain.DIGEST_TRIGGER,
            recipient=head.email,
            subject=subject,
            body=body,
            now=now,
        )
        return message, store.MessageHtml(key=key, html=html)

    def _line(self, fact: ReportFact) -> domain.DossierLine:
        return domain.DossierLine(
            code=fact.code,
            procedure=query.procedure_text(fact.procedure, self.catalogue),
            due=f"{in_vietnam(fact.due_at):%H:%M %d/%m/%Y}" if fact.due_at else "",
        )

    async def _insert(self, drafts: Sequence[tuple[store.Message, store.MessageHtml]]) -> list[str]:
        """Insert the drafts whose key is free; return their keys (a concurrent writer of
        the same key wins and this one adds nothing)."""
        queued: list[str] = []
        async with self.runtime.db.transaction() as session:
            for message, html in drafts:
                if await store.insert_if_free(session, message, html):
                    queued.append(message.key)
        if queued:
            self.notifier.wake()
        return queued
