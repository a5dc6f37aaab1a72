"""The queue's use cases and the display boards' broadcast.

Each use case is one transaction; metrics and the board hear of a change only after it
is committed. Queue changes publish no Kafka event: tickets are the counter hall's own
business and carry no dossier until one is linked.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from prometheus_client import Counter, Histogram
from pydantic import BaseModel
from sqlmodel.ext.asyncio.session import AsyncSession

from services.intake import store as intake_store
from services.intake.queue import domain, store
from services.intake.queue.domain import TicketAction, TicketState
from shared.auth import Principal
from shared.catalogue import Catalogue
from shared.clock import Clock, utc_now
from shared.errors import Conflict, Forbidden, InvalidFields, NotFound
from shared.service import ServiceRuntime

# Labels are counter ids and group names: never anything about a person.
TICKETS_ISSUED = Counter(
    "motcua_queue_tickets_issued_total",
    "Queue tickets issued, by counter group (a ticket has no counter until it is called).",
    ["unit", "group"],
)
TICKETS_CALLED = Counter(
    "motcua_queue_tickets_called_total", "Queue tickets called, by counter.", ["counter"]
)
TICKETS_SERVED = Counter(
    "motcua_queue_tickets_served_total", "Queue tickets served to the end, by counter.", ["counter"]
)
NO_SHOWS = Counter(
    "motcua_queue_no_shows_total", "Called tickets cancelled as absent, by counter.", ["counter"]
)
_BUCKETS = (30, 60, 120, 300, 600, 900, 1200, 1800, 2700, 3600, 5400, 7200, 10800)
WAITING_SECONDS = Histogram(
    "motcua_queue_waiting_seconds",
    "Time from issue to call, by the counter that called.",
    ["counter"],
    buckets=_BUCKETS,
)
SERVICE_SECONDS = Histogram(
    "motcua_queue_service_seconds",
    "Time from the start of service to done, by counter.",
    ["counter"],
    buckets=_BUCKETS,
)

T = TypeVar("T")


class QueueInvalid(InvalidFields, ValueError):
    """The request does not fit the configuration or the catalogue (422, naming
    ``field``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__([(field, message)])
        self.field = field
        self.message = message


class NothingWaiting(NotFound):
    """The counter's queue is empty (404)."""


class AlreadyLinked(Conflict, ValueError):
    """The ticket is linked to another dossier already (409)."""


class NewTicket(BaseModel):
    """What a kiosk asks for: a field, or a procedure (its field is the catalogue's)."""

    unit: str
    field: str | None = None
    procedure_code: str | None = None
    priority: domain.Priority = domain.Priority.NORMAL
    group: str | None = None


class CounterSetup(BaseModel):
    """A counter's configuration as an admin writes it."""

    unit: str
    group: str
    fields: list[str]
    procedures: list[str]


@dataclass(frozen=True, slots=True)
class Standing:
    """Where a new ticket stands: the counters that serve its queue and how many waiting
    tickets are called before it (``store.count_waiting_ahead``) when it is issued."""

    counters: list[str]
    ahead: int


@dataclass(frozen=True, slots=True)
class Called:
    """A number called to a counter: what display boards show."""

    unit: str
    number: str
    counter_id: str
    at: datetime


class Board:
    """The in-process broadcast of called numbers to display boards.

    Per process: a board connected to one instance sees only the calls made through that
    instance (run one intake instance per hall, or put a shared channel behind this).
    A subscriber that does not keep up loses its oldest undelivered calls, never blocks
    a counter.
    """

    def __init__(self, backlog: int = 100) -> None:
        self._backlog = backlog
        self._subscribers: set[asyncio.Queue[Called]] = set()

    def publish(self, called: Called) -> None:
        """Hand ``called`` to every current subscriber without waiting."""
        for queue in self._subscribers:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(called)

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[Called]]:
        """A queue receiving every call published while the context is open."""
        queue: asyncio.Queue[Called] = asyncio.Queue(self._backlog)
        self._subscribers.add(queue)
        try:
            yield queue
        finally:
            self._subscribers.discard(queue)


class Queue:
    """The queue's use cases over intake's database."""

    def __init__(
        self,
        runtime: ServiceRuntime,
        *,
        catalogue: Catalogue,
        clock: Clock = utc_now,
        board: Board | None = None,
    ) -> None:
        self.runtime = runtime
        self.catalogue = catalogue
        self.clock = clock
        self.board = board or Board()
        self._seeded = False

    def use_catalogue(self, catalogue: Catalogue) -> None:
        """Map procedures to fields with ``catalogue`` from now on (intake hands on each
        newer version it takes)."""
        self.catalogue = catalogue

    async def issue(self, new: NewTicket, *, actor: Principal) -> tuple[store.Ticket, Standing]:
        """Issue the next number of the serving group's queue today, and where it stands:
        the ids of the counters that serve it there and the people ahead of it (counted in
        the issuing transaction). The number is unique per unit, group and day."""
        if not actor.covers(new.unit):
            raise Forbidden(f"this key cannot issue tickets for {new.unit}")
        field = self._field_of(new)
        now = self.clock()
        day = domain.queue_day(now)

        async def work(session: AsyncSession) -> tuple[store.Ticket, Standing]:
            counters = [c.config() for c in await store.counters_of(session, new.unit)]
            try:
                group, serving = domain.choose_group(counters, field, new.procedure_code, new.group)
            except domain.NoCounterServes as exc:
                raise QueueInvalid("group" if new.group else "field", str(exc)) from exc
            sequence = await store.next_ticket_sequence(session, new.unit, group, day)
            ticket = store.Ticket(
                ticket_id=uuid.uuid4().hex,
                unit=new.unit,
                group=group,
                day=day,
                sequence=sequence,
                number=domain.ticket_number(group, sequence),
                priority=new.priority.value,
                rank=new.priority.rank,
                field=field,
                procedure_code=new.procedure_code,
                state=TicketState.WAITING.value,
                issued_at=now,
            )
            session.add(ticket)
            ahead = await store.count_waiting_ahead(session, ticket)
            return ticket, Standing([c.counter_id for c in serving], ahead)

        ticket, standing = await self._transaction(work)
        TICKETS_ISSUED.labels(ticket.unit, ticket.group).inc()
        return ticket, standing

    async def call_next(self, counter_id: str, *, actor: Principal) -> store.Ticket:
        """Call the next waiting ticket of the counter's own group and unit, today.

        A paused counter cannot call (``CounterPaused``); a counter with a ticket in hand
        must finish it first (``IllegalTicketTransition``). The call is announced on the
        board after it is committed.
        """

        async def work(session: AsyncSession) -> store.Ticket:
            counter = await self._counter(session, counter_id, actor)
            if counter.paused_reason is not None:
                raise domain.CounterPaused(counter_id, counter.paused_reason)
            in_hand = await store.ticket_in_hand(session, counter_id)
            if in_hand is not None:
                raise domain.IllegalTicketTransition(TicketState(in_hand.state), TicketAction.CALL)
            now = self.clock()
            ticket = await store.take_next_waiting(
                session, counter.unit, counter.group, domain.queue_day(now)
            )
            if ticket is None:
                raise NothingWaiting(f"no ticket waiting for group {counter.group}")
            ticket.state = domain.next_ticket_state(None, TicketAction.CALL).value
            ticket.counter_id = counter_id
            ticket.called_at = now
            session.add(ticket)
            return ticket

        ticket = await self._transaction(work)
        assert ticket.called_at is not None
        TICKETS_CALLED.labels(counter_id).inc()
        WAITING_SECONDS.labels(counter_id).observe(
            domain.seconds_between(ticket.issued_at, ticket.called_at)
        )
        self.board.publish(Called(ticket.unit, ticket.number, counter_id, ticket.called_at))
        return ticket

    async def advance(
        self, counter_id: str, action: TicketAction, *, actor: Principal
    ) -> store.Ticket:
        """Apply ``serve``, ``done`` or ``no_show`` to the ticket in the counter's hand;
        ``IllegalTicketTransition`` (with the ticket's state, or none) otherwise."""

        async def work(session: AsyncSession) -> store.Ticket:
            await self._counter(session, counter_id, actor)
            ticket = await store.ticket_in_hand(session, counter_id)
            current = TicketState(ticket.state) if ticket is not None else None
            after = domain.next_ticket_state(current, action)
            assert ticket is not None  # next_ticket_state refuses every action but a call
            now = self.clock()
            ticket.state = after.value
            if after is TicketState.SERVING:
                ticket.served_at = now
            else:
                ticket.finished_at = now
            if after is TicketState.CANCELLED:
                ticket.cancel_reason = domain.NO_SHOW_REASON
            session.add(ticket)
            return ticket

        ticket = await self._transaction(work)
        if action is TicketAction.DONE and ticket.served_at and ticket.finished_at:
            TICKETS_SERVED.labels(counter_id).inc()
            SERVICE_SECONDS.labels(counter_id).observe(
                domain.seconds_between(ticket.served_at, ticket.finished_at)
            )
        elif action is TicketAction.NO_SHOW:
            NO_SHOWS.labels(counter_id).inc()
        return ticket

    async def pause(
        self, counter_id: str, reason: str | None, *, actor: Principal
    ) -> store.QueueCounter:
        """Pause a counter with ``reason``, or resume it (``reason`` ``None``);
        ``IllegalCounterChange`` when it already is so."""

        async def work(session: AsyncSession) -> store.QueueCounter:
            counter = await self._counter(session, counter_id, actor)
            domain.pause_change(counter.state, pause=reason is not None)
            counter.paused_reason = reason
            counter.paused_at = self.clock() if reason is not None else None
            session.add(counter)
            return counter

        return await self._transaction(work)

    async def configure(self, counter_id: str, setup: CounterSetup) -> store.QueueCounter:
        """Create or replace a counter's configuration (its pause is kept); fields and
        procedures must be the catalogue's."""
        known_fields = {p.field for p in self.catalogue.procedures.values()}
        unknown_fields = sorted(set(setup.fields) - known_fields)
        if unknown_fields:
            raise QueueInvalid("fields", f"not in the catalogue: {', '.join(unknown_fields)}")
        unknown = sorted(set(setup.procedures) - set(self.catalogue.procedures))
        if unknown:
            raise QueueInvalid("procedures", f"not in the catalogue: {', '.join(unknown)}")

        async def work(session: AsyncSession) -> store.QueueCounter:
            counter = await store.lock_counter(session, counter_id)
            if counter is None:
                counter = store.QueueCounter(counter_id=counter_id, unit=setup.unit, group="")
            counter.unit = setup.unit
            counter.group = setup.group
            counter.fields = sorted(set(setup.fields))
            counter.procedures = sorted(set(setup.procedures))
            session.add(counter)
            return counter

        return await self._transaction(work)

    async def counters(self, unit: str | None) -> list[store.QueueCounter]:
        """The counters of ``unit`` (all with ``None``)."""
        return await self._transaction(lambda session: store.counters_of(session, unit))

    async def ticket(self, ticket_id: str, *, actor: Principal) -> store.Ticket:
        """The ticket with this id, if the caller's key covers its unit."""

        async def work(session: AsyncSession) -> store.Ticket:
            ticket = await store.get_ticket(session, ticket_id)
            if ticket is None:
                raise NotFound(f"no ticket {ticket_id}")
            if not actor.covers(ticket.unit):
                raise Forbidden(f"this key cannot read tickets of {ticket.unit}")
            return ticket

        return await self._transaction(work)

    async def link_dossier(self, ticket_id: str, code: str, *, actor: Principal) -> store.Ticket:
        """Link the dossier received from a ticket, once: same unit, ticket called at a
        counter (serving or done). Linking the same dossier again changes nothing; another
        dossier is ``AlreadyLinked``."""

        async def work(session: AsyncSession) -> store.Ticket:
            ticket = await store.lock_ticket(session, ticket_id)
            if ticket is None:
                raise NotFound(f"no ticket {ticket_id}")
            if not actor.covers(ticket.unit):
                raise Forbidden(f"this key cannot act for {ticket.unit}")
            dossier = await intake_store.get_dossier(session, code)
            # a dossier of another unit answers as an unknown one (shared.auth's rule)
            if dossier is None or dossier.receiving_unit != ticket.unit:
                raise NotFound(f"no dossier {code}")
            if ticket.dossier_code == code:
                return ticket
            if ticket.dossier_code is not None:
                raise AlreadyLinked(f"ticket {ticket.number} is linked to another dossier")
            domain.check_linkable(TicketState(ticket.state))
            ticket.dossier_code = code
            session.add(ticket)
            return ticket

        return await self._transaction(work)

    def _field_of(self, new: NewTicket) -> str:
        if (new.field is None) == (new.procedure_code is None):
            raise QueueInvalid("field", "give either a field or a procedure_code")
        if new.procedure_code is not None:
            procedure = self.catalogue.get(new.procedure_code)
            if procedure is None:
                raise QueueInvalid("procedure_code", "not in the catalogue")
            return procedure.field
        assert new.field is not None
        return new.field

    @staticmethod
    async def _counter(
        session: AsyncSession, counter_id: str, actor: Principal
    ) -> store.QueueCounter:
        counter = await store.lock_counter(session, counter_id)
        if counter is None:
            raise NotFound(f"no counter {counter_id}")
        if not actor.covers(counter.unit):
            raise Forbidden(f"this key cannot act for counter {counter_id}")
        return counter

    async def _transaction(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """Run ``work`` in one transaction, after seeding the counters once per process."""
        if not self._seeded:
            async with self.runtime.db.transaction() as session:
                await store.add_missing_counters(session, store.seed_counters())
            self._seeded = True
        async with self.runtime.db.transaction() as session:
            return await work(session)
