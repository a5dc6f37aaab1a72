"""Routing's tables: rule-set and catalogue versions, assignments, chain steps, manual queue.

Invariants:
- rule sets are append-only: every change writes a new ``rule_set_version`` row holding
  the whole rule set after the change, who made it, when and what; the current rules
  are those of the highest version;
- a dossier is either in ``assignment`` or in ``manual_queue``, never both;
- an assigned dossier has one ``chain_step`` row per step (position 0, 1, ...); the
  step at ``assignment.current_step`` is the one being worked on (Mẫu 06 sheet);
- ``clock_due_at`` (of an assignment and of a step) is only ever written from sla's
  ``sla.due_times``; ``due_at`` and ``dossier_due_at`` only by routing's own decisions;
- catalogue versions are append-only like rule sets: each ``catalogue_version`` row
  holds the whole catalogue after a change, who made it, when and what; the first is
  the shipped seed; ``published_at`` is set in the transaction that puts the version's
  ``catalogue.published`` event in the outbox.

The consumer's hot path reads and writes plain rows (``AssignmentState``, ``StepState``,
``write_batch``: a constant number of Core statements per batch); the SQLModel classes
define the schema and serve the cold paths (manual assignment, re-routing, reading).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from decimal import Decimal

import orjson
from sqlalchemy import (
    Boolean,
    Column,
    ColumnElement,
    Integer,
    String,
    Table,
    Text,
    and_,
    bindparam,
    func,
    true,
    update,
)
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.routing import domain
from shared.catalogue import Catalogue, catalogue_from, procedures_json
from shared.db import AwareDateTime, table
from shared.outbox import OutboxRow


class RuleSetVersion(SQLModel, table=True):
    """One version of the routing rules: the full set, and the change that made it."""

    __tablename__ = "rule_set_version"

    version: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    changed_at: datetime = Field(sa_column=Column(AwareDateTime, nullable=False))
    changed_by: str = Field(sa_column=Column(String(100), nullable=False))
    change: str = Field(sa_column=Column(String(500), nullable=False))
    rules: str = Field(sa_column=Column(Text, nullable=False))
    """JSON list of the rules in force from this version on."""


class Assignment(SQLModel, table=True):
    """The office holding a dossier, the rule that chose it, and the facts it used."""

    __tablename__ = "assignment"

    dossier_code: str = Field(sa_column=Column(String(40), primary_key=True))
    procedure_code: str = Field(sa_column=Column(String(40), nullable=False))
    office: str = Field(sa_column=Column(String(20), nullable=False, index=True))
    field: str = Field(sa_column=Column(String(200), nullable=False))
    rule: str = Field(sa_column=Column(String(300), nullable=False))
    explanation: str = Field(sa_column=Column(Text, nullable=False))
    rule_version: int = Field(sa_column=Column(Integer, nullable=False))
    catalogue_version: int = Field(sa_column=Column(Integer, nullable=False))
    receiving_unit: str = Field(sa_column=Column(String(20), nullable=False))
    channel: str = Field(sa_column=Column(String(10), nullable=False))
    level: str | None = Field(default=None, sa_column=Column(String(10), nullable=True))
    received_at: datetime = Field(sa_column=Column(AwareDateTime, nullable=False))
    routed_at: datetime = Field(sa_column=Column(AwareDateTime, nullable=False))
    current_step: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    action_sequence: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    """The last ``dossier.action`` sequence applied (a replayed action is ignored)."""
    manual: bool = Field(default=False, sa_column=Column(Boolean, nullable=False))
    """Assigned by an administrator: re-routing by the rules leaves it alone."""
    closed_at: datetime | None = Field(default=None, sa_column=Column(AwareDateTime, nullable=True))
    """Set when processing ended (resolved, result returned, withdrawn): no re-routing."""
    dossier_due_at: datetime | None = Field(
        default=None, sa_column=Column(AwareDateTime, nullable=True)
    )
    """The due time the dossier was received with (ngày hẹn trả on the appointment slip):
    every step is fitted into it. Null: none was given (or routed before routing kept it)."""
    clock_due_at: datetime | None = Field(
        default=None, sa_column=Column(AwareDateTime, nullable=True)
    )
    """The dossier's due time as sla's clock last published it (``sla.due_times``: pauses
    and restarts included). Null: sla has not spoken (or gave none)."""


class ChainStepRow(SQLModel, table=True):
    """One step of a dossier's chain: who holds it, from when to when, due when."""

    __tablename__ = "chain_step"

    dossier_code: str = Field(sa_column=Column(String(40), primary_key=True))
    position: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    office: str = Field(sa_column=Column(String(20), nullable=False))
    working_hours: str = Field(sa_column=Column(String(40), nullable=False))
    """The step's working hours, exactly (a ``Decimal`` as text; ``hours`` reads it)."""
    started_at: datetime | None = Field(default=None, sa_column=Column(AwareDateTime))
    due_at: datetime | None = Field(default=None, sa_column=Column(AwareDateTime))
    ended_at: datetime | None = Field(default=None, sa_column=Column(AwareDateTime))
    clock_due_at: datetime | None = Field(default=None, sa_column=Column(AwareDateTime))
    """The step's due time as sla's clock last published it (``sla.due_times``); it
    prevails over ``due_at`` (routing's own, as if the dossier was never paused). Null:
    sla has not dated this step."""

    @property
    def hours(self) -> Decimal:
        """The step's working hours."""
        return Decimal(self.working_hours)


class ManualQueueEntry(SQLModel, table=True):
    """A dossier no rule could route, waiting for an administrator, with its facts."""

    __tablename__ = "manual_queue"

    dossier_code: str = Field(sa_column=Column(String(40), primary_key=True))
    procedure_code: str = Field(sa_column=Column(String(40), nullable=False))
    reason: str = Field(sa_column=Column(Text, nullable=False))
    field: str = Field(sa_column=Column(String(200), nullable=False))
    receiving_unit: str = Field(sa_column=Column(String(20), nullable=False))
    channel: str = Field(sa_column=Column(String(10), nullable=False))
    level: str | None = Field(default=None, sa_column=Column(String(10), nullable=True))
    catalogue_version: int = Field(sa_column=Column(Integer, nullable=False))
    rule_version: int = Field(sa_column=Column(Integer, nullable=False))
    received_at: datetime = Field(sa_column=Column(AwareDateTime, nullable=False))
    queued_at: datetime = Field(sa_column=Column(AwareDateTime, nullable=False))
    dossier_due_at: datetime | None = Field(
        default=None, sa_column=Column(AwareDateTime, nullable=True)
    )
    """The due time the dossier was received with, for the steps of its later assignment."""


class CatalogueVersion(SQLModel, table=True):
    """One version of the procedure catalogue: all its procedures, and the change."""

    __tablename__ = "catalogue_version"

    version: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    changed_at: datetime = Field(sa_column=Column(AwareDateTime, nullable=False))
    changed_by: str = Field(sa_column=Column(String(100), nullable=False))
    change: str = Field(sa_column=Column(String(500), nullable=False))
    procedures: str = Field(sa_column=Column(Text, nullable=False))
    """JSON list of the procedures (``shared.catalogue.procedures_json``)."""
    published_at: datetime | None = Field(default=None, sa_column=Column(AwareDateTime))
    """When its event went to the outbox; null: never published (the seed on first start)."""

    def catalogue(self) -> Catalogue:
        """The catalogue this row holds."""
        return catalogue_from(self.version, orjson.loads(self.procedures))


TABLES: list[Table] = [
    table(RuleSetVersion),
    table(Assignment),
    table(ChainStepRow),
    table(ManualQueueEntry),
    table(CatalogueVersion),
]
ASSIGNMENTS = table(Assignment)
CHAIN_STEPS = table(ChainStepRow)
MANUAL_QUEUE = table(ManualQueueEntry)
OUTBOX = table(OutboxRow)


@dataclass(slots=True)
class AssignmentState:
    """An ``assignment`` row as plain data (the consumer's hot path; see ``Assignment``
    for what each column means)."""

    dossier_code: str
    procedure_code: str
    office: str
    field: str
    rule: str
    explanation: str
    rule_version: int
    catalogue_version: int
    receiving_unit: str
    channel: str
    level: str | None
    received_at: datetime
    routed_at: datetime
    current_step: int = 0
    action_sequence: int = 0
    manual: bool = False
    closed_at: datetime | None = None
    dossier_due_at: datetime | None = None
    clock_due_at: datetime | None = None

    def changing(self) -> tuple[object, ...]:
        """The columns following a dossier's actions and sla's due times may change
        (those ``write_batch`` updates)."""
        return (
            self.office,
            self.current_step,
            self.action_sequence,
            self.closed_at,
            self.clock_due_at,
        )


@dataclass(slots=True)
class StepState:
    """A ``chain_step`` row as plain data (the consumer's hot path; see ``ChainStepRow``)."""

    dossier_code: str
    position: int
    office: str
    working_hours: str
    started_at: datetime | None = None
    due_at: datetime | None = None
    ended_at: datetime | None = None
    clock_due_at: datetime | None = None

    @property
    def hours(self) -> Decimal:
        """The step's working hours."""
        return Decimal(self.working_hours)

    def changing(self) -> tuple[object, ...]:
        """The columns following a dossier's actions and sla's due times may change
        (those ``write_batch`` updates)."""
        return (self.office, self.started_at, self.due_at, self.ended_at, self.clock_due_at)


@dataclass(slots=True)
class BatchWrites:
    """What one consumed batch writes, in the consumer's transaction: new decisions
    (assignments with their chain steps, in their state at the batch's end; manual-queue
    entries), outbox rows in publishing order, and the stored assignments and steps the
    batch changed."""

    assignments: list[AssignmentState] = field(default_factory=list)
    steps: list[StepState] = field(default_factory=list)
    queued: list[dict[str, object]] = field(default_factory=list)
    outbox: list[dict[str, object]] = field(default_factory=list)
    changed_assignments: list[AssignmentState] = field(default_factory=list)
    changed_steps: list[StepState] = field(default_factory=list)


_ASSIGNMENT_COLUMNS = tuple(f.name for f in fields(AssignmentState))
_STEP_COLUMNS = tuple(f.name for f in fields(StepState))


def _values(row: AssignmentState | StepState, names: tuple[str, ...]) -> dict[str, object]:
    """A plain row's column values (``dataclasses.asdict`` copies deeply: slower)."""
    return {name: getattr(row, name) for name in names}


_UPDATE_ASSIGNMENT = (
    update(ASSIGNMENTS)
    .where(ASSIGNMENTS.c.dossier_code == bindparam("b_code"))
    .values(
        office=bindparam("b_office"),
        current_step=bindparam("b_current_step"),
        action_sequence=bindparam("b_action_sequence"),
        closed_at=bindparam("b_closed_at"),
        clock_due_at=bindparam("b_clock_due_at"),
    )
)
_UPDATE_STEP = (
    update(CHAIN_STEPS)
    .where(
        and_(
            CHAIN_STEPS.c.dossier_code == bindparam("b_code"),
            CHAIN_STEPS.c.position == bindparam("b_position"),
        )
    )
    .values(
        office=bindparam("b_office"),
        started_at=bindparam("b_started_at"),
        due_at=bindparam("b_due_at"),
        ended_at=bindparam("b_ended_at"),
        clock_due_at=bindparam("b_clock_due_at"),
    )
)


async def assignment_states(
    session: AsyncSession, codes: Sequence[str]
) -> dict[str, AssignmentState]:
    """The assignments of these dossiers as plain rows, by dossier code (one query;
    absent: not assigned)."""
    conn = await session.connection()
    rows = await conn.execute(ASSIGNMENTS.select().where(ASSIGNMENTS.c.dossier_code.in_(codes)))
    return {row.dossier_code: AssignmentState(**row._mapping) for row in rows}


async def chain_states(session: AsyncSession, codes: Sequence[str]) -> dict[str, list[StepState]]:
    """The chain steps of these dossiers as plain rows, in order (one query)."""
    chains: dict[str, list[StepState]] = {code: [] for code in codes}
    if not codes:
        return chains
    conn = await session.connection()
    rows = await conn.execute(
        CHAIN_STEPS.select()
        .where(CHAIN_STEPS.c.dossier_code.in_(codes))
        .order_by(CHAIN_STEPS.c.dossier_code, CHAIN_STEPS.c.position)
    )
    for row in rows:
        chains[row.dossier_code].append(StepState(**row._mapping))
    return chains


async def write_batch(session: AsyncSession, writes: BatchWrites) -> None:
    """Write one consumed batch in the caller's transaction, with at most six statements
    whatever its size: multi-row inserts of the new assignments, chain steps, queue
    entries and outbox rows (in the order given: the relay publishes them so), and
    updates of the changed assignments and steps by primary key."""
    conn = await session.connection()
    inserts: list[tuple[Table, Sequence[Mapping[str, object]]]] = [
        (ASSIGNMENTS, [_values(row, _ASSIGNMENT_COLUMNS) for row in writes.assignments]),
        (CHAIN_STEPS, [_values(step, _STEP_COLUMNS) for step in writes.steps]),
        (MANUAL_QUEUE, writes.queued),
        (OUTBOX, writes.outbox),
    ]
    for target, values in inserts:
        if values:
            await conn.execute(target.insert(), list(values))
    if writes.changed_assignments:
        await conn.execute(
            _UPDATE_ASSIGNMENT,
            [
                {
                    "b_code": row.dossier_code,
                    "b_office": row.office,
                    "b_current_step": row.current_step,
                    "b_action_sequence": row.action_sequence,
                    "b_closed_at": row.closed_at,
                    "b_clock_due_at": row.clock_due_at,
                }
                for row in writes.changed_assignments
            ],
        )
    if writes.changed_steps:
        await conn.execute(
            _UPDATE_STEP,
            [
                {
                    "b_code": step.dossier_code,
                    "b_position": step.position,
                    "b_office": step.office,
                    "b_started_at": step.started_at,
                    "b_due_at": step.due_at,
                    "b_ended_at": step.ended_at,
                    "b_clock_due_at": step.clock_due_at,
                }
                for step in writes.changed_steps
            ],
        )


def facts_of(row: Assignment | ManualQueueEntry) -> domain.Facts:
    """The routing facts a stored dossier was decided on."""
    return domain.Facts(
        procedure=row.procedure_code,
        field=row.field,
        level=row.level,
        receiving_unit=row.receiving_unit,
        channel=row.channel,
    )


async def current_rule_set(session: AsyncSession) -> domain.RuleSet:
    """The rules in force (version 0 and no rule when none was ever written)."""
    row = (
        await session.exec(
            select(RuleSetVersion).order_by(col(RuleSetVersion.version).desc()).limit(1)
        )
    ).first()
    if row is None:
        return domain.RuleSet(0, ())
    rules = tuple(domain.Rule.model_validate(raw) for raw in orjson.loads(row.rules))
    return domain.RuleSet(row.version, rules)


async def write_rule_set(
    session: AsyncSession,
    rules: tuple[domain.Rule, ...],
    *,
    base: domain.RuleSet,
    changed_by: str,
    change: str,
    now: datetime,
) -> domain.RuleSet:
    """Record ``rules`` as the version after ``base`` (validated; ``RuleError`` if not).

    Two concurrent writers on the same base collide on the version's primary key, so
    one of them fails and nothing is lost silently.
    """
    ordered = domain.validate_rule_set(rules)
    version = base.version + 1
    session.add(
        RuleSetVersion(
            version=version,
            changed_at=now,
            changed_by=changed_by,
            change=change[:500],
            rules=orjson.dumps([rule.model_dump(mode="json") for rule in ordered]).decode(),
        )
    )
    return domain.RuleSet(version, ordered)


async def rule_history(session: AsyncSession) -> list[RuleSetVersion]:
    """Every version, newest first."""
    return list(
        (
            await session.exec(select(RuleSetVersion).order_by(col(RuleSetVersion.version).desc()))
        ).all()
    )


def _received_by(receiving_unit: str | None) -> ColumnElement[bool]:
    """The manual-queue entries ``receiving_unit`` received (``None``: every entry)."""
    if receiving_unit is None:
        return true()
    return col(ManualQueueEntry.receiving_unit) == receiving_unit


async def manual_queue(
    session: AsyncSession,
    *,
    receiving_unit: str | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> list[ManualQueueEntry]:
    """The manual queue, oldest first, the dossier code breaking ties (a stable order):
    the dossiers ``receiving_unit`` received (``None``: all), at most ``limit`` of them
    (``None``: no limit) after the first ``offset``."""
    return list(
        (
            await session.exec(
                select(ManualQueueEntry)
                .where(_received_by(receiving_unit))
                .order_by(col(ManualQueueEntry.queued_at), col(ManualQueueEntry.dossier_code))
                .limit(limit)
                .offset(offset)
            )
        ).all()
    )


async def manual_queue_size(session: AsyncSession, *, receiving_unit: str | None = None) -> int:
    """How many dossiers wait in the manual queue: those ``receiving_unit`` received
    (``None``: all), the same filter as ``manual_queue``."""
    count = await session.scalar(
        select(func.count())
        .select_from(table(ManualQueueEntry))
        .where(_received_by(receiving_unit))
    )
    return int(count or 0)


async def chain_of(session: AsyncSession, codes: list[str]) -> dict[str, list[ChainStepRow]]:
    """The chain steps of these dossiers, in order (one query)."""
    rows = (
        await session.exec(
            select(ChainStepRow)
            .where(col(ChainStepRow.dossier_code).in_(codes))
            .order_by(col(ChainStepRow.dossier_code), col(ChainStepRow.position))
        )
    ).all()
    chains: dict[str, list[ChainStepRow]] = {code: [] for code in codes}
    for row in rows:
        chains[row.dossier_code].append(row)
    return chains


async def queued_among(session: AsyncSession, codes: list[str]) -> set[str]:
    """Which of these dossiers wait in the manual queue (one query)."""
    return set(
        (
            await session.exec(
                select(ManualQueueEntry.dossier_code).where(
                    col(ManualQueueEntry.dossier_code).in_(codes)
                )
            )
        ).all()
    )


async def assignment(session: AsyncSession, code: str) -> Assignment | None:
    """The assignment of one dossier (None: not assigned)."""
    return await session.get(Assignment, code)


async def queue_entry(session: AsyncSession, code: str) -> ManualQueueEntry | None:
    """The manual-queue entry of one dossier (None: not queued)."""
    return await session.get(ManualQueueEntry, code)


async def open_assignments_before(session: AsyncSession, rule_version: int) -> list[Assignment]:
    """The open assignments (processing not ended) decided under a rule version older
    than ``rule_version``: those re-routing may move."""
    return list(
        (
            await session.exec(
                select(Assignment).where(
                    col(Assignment.closed_at).is_(None),
                    col(Assignment.rule_version) < rule_version,
                )
            )
        ).all()
    )


def add_assignment(
    session: AsyncSession, row: AssignmentState, chain: list[StepState]
) -> tuple[Assignment, list[ChainStepRow]]:
    """Record a dossier's assignment and its chain steps through the unit of work
    (written at the next flush; the cold paths: manual assignment, re-routing)."""
    assigned = Assignment.model_validate(_values(row, _ASSIGNMENT_COLUMNS))
    steps = [ChainStepRow.model_validate(_values(step, _STEP_COLUMNS)) for step in chain]
    session.add(assigned)
    session.add_all(steps)
    return assigned, steps


async def drop_decisions(
    session: AsyncSession,
    *,
    assigned: Sequence[tuple[Assignment, list[ChainStepRow]]] = (),
    queued: Sequence[ManualQueueEntry] = (),
) -> None:
    """Delete these assignments (each with its chain steps) and manual-queue entries, and
    flush: the deletes reach the database before the caller records a new decision for the
    same dossiers, which would otherwise collide on the primary key (the unit of work
    inserts before it deletes)."""
    for row, chain in assigned:
        for step in chain:
            await session.delete(step)
        await session.delete(row)
    for entry in queued:
        await session.delete(entry)
    await session.flush()


async def latest_catalogue(session: AsyncSession) -> CatalogueVersion | None:
    """The newest catalogue version (None before the seed was written)."""
    return (
        await session.exec(
            select(CatalogueVersion).order_by(col(CatalogueVersion.version).desc()).limit(1)
        )
    ).first()


async def latest_catalogue_number(session: AsyncSession) -> int | None:
    """The newest catalogue version's number, without reading its procedures."""
    number = await session.scalar(select(func.max(col(CatalogueVersion.version))))
    return int(number) if number is not None else None


def write_catalogue(
    session: AsyncSession,
    catalogue: Catalogue,
    *,
    changed_by: str,
    change: str,
    now: datetime,
    published: bool,
) -> CatalogueVersion:
    """Record ``catalogue`` as a new version row.

    Two writers of the same version collide on the primary key, so one of them fails
    and no change is lost silently.
    """
    row = CatalogueVersion(
        version=catalogue.version,
        changed_at=now,
        changed_by=changed_by[:100],
        change=change[:500],
        procedures=orjson.dumps(procedures_json(catalogue)).decode(),
        published_at=now if published else None,
    )
    session.add(row)
    return row


def mark_published(session: AsyncSession, row: CatalogueVersion, now: datetime) -> None:
    """Record that ``row``'s ``catalogue.published`` event went to the outbox at ``now``
    (in the transaction that enqueues it)."""
    row.published_at = now
    session.add(row)


async def catalogue_history(
    session: AsyncSession, *, limit: int | None = None, offset: int = 0
) -> list[CatalogueVersion]:
    """Catalogue versions, newest first (the version number is unique: a stable order),
    at most ``limit`` of them (``None``: every one) after the first ``offset``."""
    return list(
        (
            await session.exec(
                select(CatalogueVersion)
                .order_by(col(CatalogueVersion.version).desc())
                .limit(limit)
                .offset(offset)
            )
        ).all()
    )


async def catalogue_versions(session: AsyncSession) -> int:
    """How many catalogue versions are stored."""
    count = await session.scalar(select(func.count()).select_from(table(CatalogueVersion)))
    return int(count or 0)
