"""What every intake use case shares: the errors it raises, the requests it takes, the
answers it keeps, and :class:`IntakeCore` (runtime, catalogue and calendar in use, the
access check, the event and the idempotent transaction).

The use cases themselves are by role: :mod:`services.intake.reception` (new dossiers),
:mod:`services.intake.actions` (actions on them), :mod:`services.intake.lookup` (reading
them); :class:`services.intake.app.Intake` joins them.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from services.intake import domain, store
from services.intake.sequences import Sequences
from services.intake.settings import IntakeSettings
from shared.auth import Access, DossierUnits, Principal, dossier_not_found, may_reach
from shared.calendar import WorkCalendar, default_calendar
from shared.catalogue import Catalogue, Procedure
from shared.catalogue_sync import kept_catalogues
from shared.clock import Clock, utc_now
from shared.errors import Conflict, Invalid, InvalidFields
from shared.events import Channel, Contact, DossierReceived, Payload, TimeLimit
from shared.outbox import enqueue
from shared.service import ServiceRuntime
from shared.settings import ServiceName

SERVICE: ServiceName = "intake"
_PG_WRITERS = 3
"""Use-case transactions at once on PostgreSQL: the pool's 5 connections less the relay's
and a consumer's."""


class CatalogueError(InvalidFields, ValueError):
    """The dossier does not fit the catalogue; ``errors`` names the fields (422)."""


class NoSlip(Conflict, ValueError):
    """The dossier has no slip: it was never received (409)."""


class IdempotencyConflict(Invalid, ValueError):
    """An ``Idempotency-Key`` reused with a different request (422)."""


class NewDossier(BaseModel):
    """What the API validated (formats); the use case checks it against the catalogue."""

    procedure_code: str
    channel: Channel
    receiving_unit: str
    applicant: Contact
    applicant_id_number: str | None
    documents: list[str]
    received_at: datetime | None = None


class ActionRequest(BaseModel):
    """An action as the API validated its shape; ``at`` only from importer or admin keys."""

    command: domain.Command
    at: datetime | None = None
    reason: str | None = None
    new_due_at: datetime | None = None
    office: str | None = None


@dataclass(frozen=True, slots=True)
class Idempotency:
    """A request's ``Idempotency-Key``, scoped to the caller's key, and its hash."""

    key_id: str
    key: str
    request_hash: str

    @classmethod
    def of(cls, principal: Principal, key: str, request: dict[str, Any]) -> Idempotency:
        """Hash the request canonically (sorted keys), so equal bodies hash equal."""
        canonical = orjson.dumps(request, option=orjson.OPT_SORT_KEYS)
        return cls(principal.key_id, key, hashlib.sha256(canonical).hexdigest())


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP answer as it is kept for retries."""

    status_code: int
    body: dict[str, Any]


Work = Callable[[AsyncSession], Awaitable[Answer]]


class IntakeCore:
    """Intake's runtime and what its use cases share."""

    def __init__(
        self,
        runtime: ServiceRuntime,
        *,
        catalogue: Catalogue,
        clock: Clock = utc_now,
        options: IntakeSettings | None = None,
    ) -> None:
        self.runtime = runtime
        self.catalogue = catalogue
        self.clock = clock
        self.options = options or IntakeSettings()
        self.calendar = default_calendar(province=runtime.settings.province)
        self._writers = asyncio.Semaphore(1 if runtime.db.is_sqlite else _PG_WRITERS)
        """The use-case transactions open at once in this process. SQLite: one, so that
        they queue here (in order, no busy-wait sleeps) rather than on the file's write
        lock. PostgreSQL: fewer than the connection pool holds (5), so that a burst never
        opens (and closes) connections beyond it."""
        self.sequences = Sequences(runtime.db, self._writing)
        self.catalogue_users: list[Callable[[Catalogue], None]] = []
        """Also given each newer catalogue version (e.g. the kiosk queue's copy)."""
        self._retired: dict[str, Procedure] = {}
        self._restored = False

    def use_calendar(self, calendar: WorkCalendar) -> None:
        """Compute due times with ``calendar`` from now on (after a calendar change)."""
        self.calendar = calendar

    def use_catalogue(self, catalogue: Catalogue) -> None:
        """Validate and compute due times with ``catalogue`` from now on, if it is newer
        than the one in use (an older or equal version is ignored)."""
        if catalogue.version <= self.catalogue.version:
            return
        for code, procedure in self.catalogue.procedures.items():
            if code not in catalogue.procedures:
                self._retired[code] = procedure
        for code in catalogue.procedures:
            self._retired.pop(code, None)
        self.catalogue = catalogue
        for user in self.catalogue_users:
            user(catalogue)

    async def restore_catalogue(self) -> None:
        """Use the versions kept before a restart (once per process; newest wins), and
        remember the procedures they had that the version in use has not."""
        if self._restored:
            return
        for catalogue in await kept_catalogues(self.runtime.db):
            self.use_catalogue(catalogue)
            self._retired.update(
                (code, procedure)
                for code, procedure in catalogue.procedures.items()
                if code not in self.catalogue.procedures
            )
        self._restored = True

    def procedure(self, code: str) -> Procedure:
        """The procedure of a dossier already in hand: current, or the last version of one
        removed since (``KeyError`` if intake never knew it)."""
        return self.catalogue.procedures.get(code) or self._retired[code]

    @staticmethod
    async def _units(session: AsyncSession, dossier: store.Dossier) -> DossierUnits:
        """Who has a part in ``dossier``: its receiving unit, the offices routing named
        (``dossier.routed``) and the office it was last transferred to."""
        offices = await store.handling_offices(session, dossier.code)
        return DossierUnits.of(dossier.receiving_unit, dossier.office, *offices)

    async def _reachable(
        self, session: AsyncSession, code: str, actor: Principal, access: Access
    ) -> store.Dossier:
        """The dossier, if ``actor`` has ``access`` to it; else ``NotFound``, as for an
        unknown code."""
        dossier = await store.get_dossier(session, code)
        if dossier is None or not may_reach(actor, access, await self._units(session, dossier)):
            raise dossier_not_found(code)
        return dossier

    def _received(
        self,
        dossier: store.Dossier,
        procedure: Procedure,
        received_at: datetime,
        due_at: datetime | None,
    ) -> DossierReceived:
        limit = procedure.time_limit_for(online=dossier.channel == Channel.ONLINE.value)
        return DossierReceived(
            procedure_code=dossier.procedure_code,
            channel=Channel(dossier.channel),
            receiving_unit=dossier.receiving_unit,
            received_at=received_at,
            due_at=due_at,
            documents=dossier.documents,
            field=procedure.field,
            time_limit=TimeLimit(value=limit.value, unit=limit.unit.value),
            supplement_rule=procedure.supplement_rule,
            catalogue_version=self.catalogue.version,
        )

    @staticmethod
    def _emit(session: AsyncSession, payload: Payload, *, at: datetime, code: str) -> None:
        enqueue(session, payload, occurred_at=at, source=SERVICE, dossier_code=code)

    async def _once(self, idempotency: Idempotency | None, work: Work) -> tuple[Answer, bool]:
        """Run ``work`` in a transaction, or replay the answer kept for ``idempotency``.

        Returns the answer and whether it is fresh. Two concurrent first tries of one key
        both run; the second's commit fails on the answer's primary key, so its whole
        transaction (dossier and event included) is rolled back and it replays the first.
        Errors are not kept: a retry after a 4xx is judged again.
        """
        if idempotency is not None:
            prior = await self._prior(idempotency)
            if prior is not None:
                return prior, False
        return await self._commit_once(idempotency, work)

    async def _commit_once(
        self, idempotency: Idempotency | None, work: Work
    ) -> tuple[Answer, bool]:
        """:meth:`_once` after the look for a kept answer (done by the caller)."""
        try:
            async with self._writing(), self.runtime.db.transaction() as session:
                answer = await work(session)
                if idempotency is not None:
                    await store.keep_answer(
                        session,
                        store.IdempotentAnswer(
                            key_id=idempotency.key_id,
                            idempotency_key=idempotency.key,
                            request_hash=idempotency.request_hash,
                            status_code=answer.status_code,
                            body=answer.body,
                            created_at=self.clock(),
                        ),
                    )
        except IntegrityError:
            prior = await self._prior(idempotency) if idempotency is not None else None
            if prior is None:
                raise
            return prior, False
        self.runtime.relay.wake()
        return answer, True

    def _writing(self) -> AbstractAsyncContextManager[object]:
        """Held around a use case's write transaction and a sequence block's
        reservation (never one inside the other)."""
        return self._writers

    async def _prior(self, idempotency: Idempotency) -> Answer | None:
        async with self.runtime.db.sessions() as session:
            kept = await store.get_answer(session, idempotency.key_id, idempotency.key)
        if kept is None:
            return None
        if kept.request_hash != idempotency.request_hash:
            msg = (
                f"Idempotency-Key {idempotency.key!r} was used with a different request; "
                "use a new key for a new request"
            )
            raise IdempotencyConflict(msg)
        return Answer(kept.status_code, kept.body)
