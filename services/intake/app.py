"""Intake's wiring: the runtime (database, broker, outbox relay) and the use cases.

Every use case writes the dossier, its history and its event in one transaction; the
relay publishes the event afterwards. Nothing here waits for Kafka. A request sent
with an ``Idempotency-Key`` stores its answer in that same transaction.

The catalogue is a read copy: the newest version routing published (kept in intake's
``catalogue_copy`` table, read back on the first use after a start), else the shipped
seed. A procedure a later version removed stays known for dossiers already in hand
(slip, acceptance) but is refused for new ones.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from prometheus_client import Counter
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from services.intake import domain, keys, store, views
from services.intake.queue import store as queue_store
from services.intake.settings import IntakeSettings
from services.intake.slip import Slip, time_limit_text, unit_name
from shared.auth import Access, DossierUnits, Principal, Role, StoredKey, may, may_reach
from shared.calendar import CalendarRangeError, WorkCalendar, default_calendar
from shared.calendar_sync import following_calendar
from shared.catalogue import Catalogue, Procedure, seed_catalogue
from shared.catalogue_sync import TABLES as CATALOGUE_TABLES
from shared.catalogue_sync import following_catalogue, kept_catalogues
from shared.clock import Clock, utc_now
from shared.consume import follow, subscribe
from shared.events import (
    Channel,
    Contact,
    DossierActionRecorded,
    DossierContact,
    DossierReceived,
    DossierRouted,
    DossierSubmitted,
    Envelope,
    Payload,
    TimeLimit,
)
from shared.outbox import enqueue
from shared.service import ServiceRuntime, every, until_done
from shared.settings import ServiceName, Settings
from shared.signing import key_signing
from shared.topics import (
    API_KEYS,
    CALENDAR,
    CATALOGUE,
    DOSSIER_CONTACTS,
    DOSSIER_LIFECYCLE,
    DOSSIER_ROUTING,
)

SERVICE: ServiceName = "intake"

DOSSIERS_RECEIVED = Counter(
    "motcua_dossiers_received_total", "Dossiers handed in, by channel.", ["channel"]
)
DOSSIER_ACTIONS = Counter(
    "motcua_dossier_actions_total", "Actions recorded on dossiers, by action.", ["action"]
)
PUBLIC_LOOKUP_PATH = "/api/v1/public/dossiers"
_TIME_SETTERS = frozenset({Role.IMPORTER, Role.ADMIN})
_KEYS_RETRY_SECONDS = 2.0
_PURGE_SECONDS = 3600.0


class CatalogueError(ValueError):
    """The dossier does not fit the catalogue; ``errors`` names the fields."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{f}: {m}" for f, m in errors))
        self.errors = errors


class NotFound(LookupError):
    """No dossier with that code, or none the caller's key may reach (HTTP 404: the same
    answer, so that a foreign key learns nothing of which codes exist)."""


class Forbidden(PermissionError):
    """The caller's key may not do this (HTTP 403)."""


class NoSlip(ValueError):
    """The dossier has no slip: it was never received (HTTP 409)."""


class IdempotencyConflict(ValueError):
    """An ``Idempotency-Key`` reused with a different request (HTTP 422)."""


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


def _accesses(command: domain.Command, role: Role) -> list[Access]:
    """The kinds of access that give ``command``: a counter action where the one-stop
    unit gives it, an office action where the office does (some are both). An importer
    replays whole histories, so it gives any command as either."""
    roles = {"counter", "office"} if role is Role.IMPORTER else domain.COMMAND_ROLES[command]
    return [
        access
        for role, access in (("counter", Access.COUNTER_ACTION), ("office", Access.OFFICE_ACTION))
        if role in roles
    ]


class Intake:
    """Intake's use cases over its runtime."""

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

    async def receive(
        self, new: NewDossier, *, actor: Principal, idempotency: Idempotency | None = None
    ) -> Answer:
        """Store a dossier, its first history entry and its event (``dossier.received``, or
        ``dossier.submitted`` for an online dossier awaiting acceptance), atomically."""
        if not may_reach(actor, Access.RECEIVE, DossierUnits.of(new.receiving_unit)):
            raise Forbidden(f"this key cannot receive dossiers for {new.receiving_unit}")
        if new.received_at is not None and actor.role not in _TIME_SETTERS:
            raise Forbidden("received_at may be set by importer or admin keys only")
        await self.restore_catalogue()
        errors = domain.catalogue_errors(self.catalogue, new.procedure_code)
        if errors:
            raise CatalogueError(errors)
        procedure = self.catalogue.procedures[new.procedure_code]
        now = new.received_at or self.clock()
        if now > self.clock():
            raise CatalogueError([("received_at", "is in the future")])
        status = domain.initial_status(new.channel)
        received_at = now if status is domain.DossierStatus.RECEIVED else None
        due_at: datetime | None = None
        if received_at is not None:
            try:
                due_at = self.calendar.due_at(received_at, procedure.duration_for(online=False))
            except CalendarRangeError as exc:
                if new.received_at is None:
                    raise  # the server's own clock is outside the calendar: 503
                raise CatalogueError([("received_at", str(exc))]) from exc

        async def work(session: AsyncSession) -> Answer:
            day = domain.reception_day(now)
            sequence = await store.next_sequence(session, new.receiving_unit, day)
            code = domain.dossier_code(new.receiving_unit, day, sequence)
            dossier = store.Dossier(
                code=code,
                procedure_code=new.procedure_code,
                channel=new.channel.value,
                receiving_unit=new.receiving_unit,
                status=status.value,
                submitted_at=now,
                received_at=received_at,
                due_at=due_at,
                last_event_at=now,
                applicant_name=new.applicant.name,
                applicant_phone=new.applicant.phone,
                applicant_email=new.applicant.email,
                applicant_id_number=new.applicant_id_number,
                documents=new.documents,
            )
            session.add(dossier)
            session.add(
                store.DossierHistory(
                    code=code,
                    position=1,
                    action="receive" if received_at is not None else "submit",
                    at=now,
                    status=status.value,
                    key_id=actor.key_id,
                )
            )
            payload: Payload
            if received_at is not None:
                payload = self._received(dossier, procedure, received_at, due_at)
            else:
                payload = DossierSubmitted(
                    procedure_code=new.procedure_code,
                    channel=new.channel,
                    receiving_unit=new.receiving_unit,
                    submitted_at=now,
                )
            contact = DossierContact(
                applicant=new.applicant,
                procedure_code=new.procedure_code,
                receiving_unit=new.receiving_unit,
            )
            self._emit(session, contact, at=now, code=code)
            self._emit(session, payload, at=now, code=code)
            return Answer(201, views.DossierOut.of(dossier).model_dump(mode="json"))

        answer, fresh = await self._once(idempotency, work)
        if fresh:
            DOSSIERS_RECEIVED.labels(new.channel.value).inc()
        return answer

    async def act(
        self,
        code: str,
        request: ActionRequest,
        *,
        actor: Principal,
        idempotency: Idempotency | None = None,
    ) -> Answer:
        """Record one action on a dossier: its new state, a history entry and its event
        (``dossier.action`` with the next gap-free sequence; ``dossier.received`` for
        ``accept``), in one transaction with the dossier row locked."""
        command = request.command
        if not domain.may_give(actor.role.value, command):
            raise Forbidden(f"role {actor.role.value} may not {command.value}")
        if request.at is not None and actor.role not in _TIME_SETTERS:
            raise Forbidden("at may be set by importer or admin keys only")
        await self.restore_catalogue()
        now = self.clock()
        at = request.at or now
        if at > now:
            raise domain.InvalidCommand("at", "is in the future")

        async def work(session: AsyncSession) -> Answer:
            dossier = await store.lock_dossier(session, code)
            if dossier is None:
                raise NotFound(code)
            units = await self._units(session, dossier)
            accesses = _accesses(command, actor.role)
            if not any(may_reach(actor, access, units) for access in accesses):
                raise NotFound(code)
            state = domain.DossierState(
                status=domain.DossierStatus(dossier.status),
                due_at=dossier.due_at,
                extended_due_at=dossier.extended_due_at,
                extensions=dossier.extensions,
                last_event_at=dossier.last_event_at,
            )
            cmd = domain.CommandInput(
                command=command,
                at=at,
                reason=request.reason,
                new_due_at=request.new_due_at,
                office=request.office,
            )
            decision = domain.decide(
                state,
                cmd,
                extension_limit=self.options.extension_limit,
                extension_max_days=self.options.extension_max_days,
            )
            dossier.status = decision.status.value
            dossier.extended_due_at = decision.extended_due_at
            dossier.extensions = decision.extensions
            dossier.last_event_at = at
            office = request.office if command is domain.Command.TRANSFER else None
            acting_office = office or (actor.unit if actor.role is Role.OFFICE else None)
            if office is not None:
                dossier.office = office
            contract_action = command.contract_action
            sequence: int | None = None
            payload: Payload
            if contract_action is None:
                payload = self._accept(dossier, at, caller_set_time=request.at is not None)
            else:
                dossier.action_sequence += 1
                sequence = dossier.action_sequence
                payload = DossierActionRecorded(
                    action=contract_action,
                    sequence=sequence,
                    at=at,
                    status=decision.status.value,
                    national_status=decision.status.national_code,
                    reason=request.reason,
                    new_due_at=request.new_due_at,
                    office=acting_office,
                )
            session.add(dossier)
            session.add(
                store.DossierHistory(
                    code=code,
                    position=await store.history_length(session, code) + 1,
                    action=command.value,
                    sequence=sequence,
                    at=at,
                    status=decision.status.value,
                    reason=request.reason,
                    new_due_at=request.new_due_at,
                    office=acting_office,
                    key_id=actor.key_id,
                )
            )
            self._emit(session, payload, at=at, code=code)
            out = views.ActionOut(
                action=command.value,
                sequence=sequence,
                at=at,
                dossier=views.DossierOut.of(dossier),
            )
            return Answer(200, out.model_dump(mode="json"))

        answer, fresh = await self._once(idempotency, work)
        if fresh:
            DOSSIER_ACTIONS.labels(command.value).inc()
        return answer

    async def get(self, code: str) -> store.Dossier | None:
        """The dossier with this code."""
        async with self.runtime.db.sessions() as session:
            return await store.get_dossier(session, code)

    async def detail(
        self, code: str, *, actor: Principal
    ) -> tuple[store.Dossier, list[store.DossierHistory]]:
        """The dossier with this code and its history; ``NotFound`` if there is none or
        ``actor`` may not read it."""
        async with self.runtime.db.sessions() as session:
            dossier = await self._reachable(session, code, actor, Access.READ)
            return dossier, await store.history(session, code)

    async def slip(self, code: str, *, actor: Principal) -> Slip:
        """What the slip of a received dossier prints (the applicant's name and phone:
        personal data); ``Forbidden`` for a role without it, ``NotFound`` for a dossier
        not received by the key's unit, ``NoSlip`` when it was never received."""
        if not may(actor, Access.READ_PERSONAL):
            raise Forbidden(f"role {actor.role.value} may not read personal data")
        async with self.runtime.db.sessions() as session:
            dossier = await self._reachable(session, code, actor, Access.READ_PERSONAL)
        if dossier.received_at is None:
            msg = f"dossier {code} was not received (it is {dossier.status}): no slip"
            raise NoSlip(msg)
        await self.restore_catalogue()
        procedure = self.procedure(dossier.procedure_code)
        limit = procedure.time_limit_for(online=dossier.channel == Channel.ONLINE.value)
        base = self.options.public_base_url.rstrip("/")
        return Slip(
            code=dossier.code,
            unit_name=unit_name(dossier.receiving_unit),
            procedure_name=procedure.name,
            applicant_name=dossier.applicant_name,
            applicant_phone=dossier.applicant_phone,
            documents=dossier.documents,
            time_limit=time_limit_text(limit.value, limit.unit),
            received_at=dossier.received_at,
            due_at=dossier.due_at,
            lookup_url=f"{base}{PUBLIC_LOOKUP_PATH}/{dossier.code}",
        )

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
            raise NotFound(code)
        return dossier

    async def apply_routing(self, session: AsyncSession, events: Sequence[Envelope]) -> None:
        """Keep who handles each dossier from routing's ``dossier.routed`` (a re-route
        replaces the offices before it): the offices whose keys act on it."""
        for envelope in events:
            if envelope.type != DossierRouted.event_type or envelope.dossier_code is None:
                continue
            routed = envelope.body(DossierRouted)
            offices = [step.office for step in routed.steps] or [routed.office]
            if offices[0] != routed.office:
                offices.insert(0, routed.office)
            await store.replace_handlers(session, envelope.dossier_code, offices)

    async def public_lookup(self, code: str, phone: str) -> store.Dossier | None:
        """The dossier, only when ``phone`` is its applicant's (``+84`` and ``0`` alike).

        An unknown code and a wrong phone give the same ``None``: the answer tells
        nobody whether a code exists.
        """
        wanted = domain.normalise_phone(phone)
        dossier = await self.get(code)
        if wanted is None or dossier is None or dossier.applicant_phone is None:
            return None
        return dossier if domain.normalise_phone(dossier.applicant_phone) == wanted else None

    async def keys_job(self) -> None:
        """At start: announce the keys whose state never reached the outbox (keys made
        before keys were events), then wake the relay; retried while the database is away.
        """

        async def catch_up() -> None:
            signing = key_signing(self.runtime.settings)
            if await keys.announce_keys(self.runtime.db, signing, clock=self.clock):
                self.runtime.relay.wake()

        await until_done(catch_up, "intake key announcement", _KEYS_RETRY_SECONDS)

    async def purge_answers(self) -> None:
        """Forget the idempotent answers older than the kept window (a retry after it is
        a new request)."""
        before = self.clock() - timedelta(hours=self.options.idempotency_keep_hours)
        async with self.runtime.db.transaction() as session:
            await store.purge_answers(session, before)

    async def purge_job(self) -> None:
        """Purge old idempotent answers hourly (a background job of the process)."""
        await every(_PURGE_SECONDS, self.purge_answers, "intake idempotency purge")

    async def find_key(self, key_id: str) -> StoredKey | None:
        """The stored API key with this id (``shared.auth``'s ``KeyLookup``)."""
        async with self.runtime.db.sessions() as session:
            row = await store.get_key(session, key_id)
            return row.stored() if row is not None else None

    def _accept(
        self, dossier: store.Dossier, at: datetime, *, caller_set_time: bool
    ) -> DossierReceived:
        """Start the clock of an accepted online dossier: set its reception and due time."""
        procedure = self.procedure(dossier.procedure_code)
        try:
            due_at = self.calendar.due_at(at, procedure.duration_for(online=True))
        except CalendarRangeError as exc:
            if not caller_set_time:
                raise  # the server's own clock is outside the calendar: 503
            raise domain.InvalidCommand("at", str(exc)) from exc
        dossier.received_at, dossier.due_at = at, due_at
        return self._received(dossier, procedure, at, due_at)

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
        try:
            async with self.runtime.db.transaction() as session:
                answer = await work(session)
                if idempotency is not None:
                    session.add(
                        store.IdempotentAnswer(
                            key_id=idempotency.key_id,
                            idempotency_key=idempotency.key,
                            request_hash=idempotency.request_hash,
                            status_code=answer.status_code,
                            body=answer.body,
                            created_at=self.clock(),
                        )
                    )
        except IntegrityError:
            prior = await self._prior(idempotency) if idempotency is not None else None
            if prior is None:
                raise
            return prior, False
        self.runtime.relay.wake()
        return answer, True

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


def build(
    settings: Settings, *, clock: Clock = utc_now, options: IntakeSettings | None = None
) -> Intake:
    """Intake's runtime and use cases: it publishes the lifecycle, calendar and keys topics,
    consumes the routing topic (who handles each dossier, for the access rule), and
    follows the calendar topic like every service that computes due times, and the
    catalogue topic for its read copy of the catalogue."""
    runtime = ServiceRuntime(
        SERVICE,
        settings,
        tables=[*store.TABLES, *queue_store.TABLES, *CATALOGUE_TABLES],
        publishes=[DOSSIER_LIFECYCLE, DOSSIER_CONTACTS, CALENDAR, API_KEYS],
    )
    intake = Intake(runtime, catalogue=seed_catalogue(), clock=clock, options=options)
    subscribe(runtime, intake.apply_routing, DOSSIER_ROUTING)
    follow(
        runtime,
        following_catalogue(
            intake.use_catalogue,
            following_calendar(settings.var_dir, settings.province, intake.use_calendar),
        ),
        CALENDAR,
        CATALOGUE,
    )
    return intake
