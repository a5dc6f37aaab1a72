"""Actions on a dossier in hand: accept, transfer, supplement, extend, finish..."""

from __future__ import annotations

from datetime import datetime

from prometheus_client import Counter
from sqlmodel.ext.asyncio.session import AsyncSession

from services.intake import domain, store, views
from services.intake.core import ActionRequest, Answer, Idempotency, IntakeCore
from services.intake.reception import TIME_SETTERS
from shared.auth import Access, Principal, Role, dossier_not_found, may_reach
from shared.calendar import CalendarRangeError
from shared.errors import Forbidden
from shared.events import DossierActionRecorded, DossierReceived, Payload

DOSSIER_ACTIONS = Counter(
    "motcua_dossier_actions_total", "Actions recorded on dossiers, by action.", ["action"]
)


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


class Actions(IntakeCore):
    """The action use case."""

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
        at = await self._check_action(request, actor)

        async def work(session: AsyncSession) -> Answer:
            return await self._record_action(session, code, request, actor, at)

        answer, fresh = await self._once(idempotency, work)
        if fresh:
            DOSSIER_ACTIONS.labels(request.command.value).inc()
        return answer

    async def _check_action(self, request: ActionRequest, actor: Principal) -> datetime:
        """The caller's right to the command and the action's time (``at``, or now),
        checked before any read: ``Forbidden`` or ``InvalidCommand``."""
        command = request.command
        if not domain.may_give(actor.role.value, command):
            raise Forbidden(f"role {actor.role.value} may not {command.value}")
        if request.at is not None and actor.role not in TIME_SETTERS:
            raise Forbidden("at may be set by importer or admin keys only")
        await self.restore_catalogue()
        now = self.clock()
        at = request.at or now
        if at > now:
            raise domain.InvalidCommand("at", "is in the future")
        return at

    async def _record_action(
        self,
        session: AsyncSession,
        code: str,
        request: ActionRequest,
        actor: Principal,
        at: datetime,
    ) -> Answer:
        """Lock the dossier, decide, and write its new state, history entry and event in
        ``session``'s transaction."""
        command = request.command
        dossier = await self._lock_reachable(session, code, actor, command)
        decision = self._decide(dossier, request, at)
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
        entry = store.DossierHistory(
            code=code,
            position=await store.next_history_position(session, code),
            action=command.value,
            sequence=sequence,
            at=at,
            status=decision.status.value,
            reason=request.reason,
            new_due_at=request.new_due_at,
            office=acting_office,
            key_id=actor.key_id,
        )
        await store.save_action(session, dossier, entry)
        self._emit(session, payload, at=at, code=code)
        out = views.ActionOut(
            action=command.value, sequence=sequence, at=at, dossier=views.DossierOut.of(dossier)
        )
        return Answer(200, out.model_dump(mode="json"))

    async def _lock_reachable(
        self, session: AsyncSession, code: str, actor: Principal, command: domain.Command
    ) -> store.Dossier:
        """The dossier, locked for the transaction, if ``actor`` may give ``command`` on
        it; else ``NotFound``, as for an unknown code."""
        dossier = await store.lock_dossier(session, code)
        if dossier is None:
            raise dossier_not_found(code)
        units = await self._units(session, dossier)
        accesses = _accesses(command, actor.role)
        if not any(may_reach(actor, access, units) for access in accesses):
            raise dossier_not_found(code)
        return dossier

    def _decide(
        self, dossier: store.Dossier, request: ActionRequest, at: datetime
    ) -> domain.Decision:
        """The domain's decision on the dossier's state, set on the dossier (status, the
        extension and the time of its last event)."""
        state = domain.DossierState(
            status=domain.DossierStatus(dossier.status),
            due_at=dossier.due_at,
            extended_due_at=dossier.extended_due_at,
            extensions=dossier.extensions,
            last_event_at=dossier.last_event_at,
        )
        cmd = domain.CommandInput(
            command=request.command,
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
        return decision

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
