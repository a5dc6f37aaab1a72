"""The event contract: one envelope for every event, one payload model per type.

Invariants:
- ``occurred_at`` and every datetime in a payload are timezone-aware;
- ``event_id`` is unique per event; consumers record the ids they applied, so a
  redelivered event is applied once;
- messages about a dossier carry its ``dossier_code`` and are keyed by it.

Encoding is JSON (orjson). ``decode`` validates the envelope *and* its payload, so
a message that ``decode`` accepts can be applied by any consumer of its type; the
envelope keeps the payload's model, so consumers read it (``Envelope.body``,
``Envelope.payload_model``) without validating it again.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, ClassVar, Literal, TypeVar

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

from shared.topics import (
    API_KEYS,
    CALENDAR,
    CATALOGUE,
    DOSSIER_CONTACTS,
    DOSSIER_LIFECYCLE,
    DOSSIER_ROUTING,
    DOSSIER_SLA,
    TopicSpec,
)

CONTRACT_VERSION = 1


class Channel(StrEnum):
    """How a dossier reached us (kênh tiếp nhận)."""

    COUNTER = "counter"  # trực tiếp
    ONLINE = "online"  # trực tuyến
    POST = "post"  # bưu chính công ích


class Payload(BaseModel):
    """Base of every payload: the event type it travels as and its topic."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    event_type: ClassVar[str]
    topic: ClassVar[TopicSpec]


class Contact(BaseModel):
    """How to reach the applicant. Personal data: never logged, never a metric label."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str
    phone: str | None = None
    email: str | None = None


class TimeLimit(BaseModel):
    """A procedure's time limit as the dossier was received under it (thời hạn giải quyết).

    ``unit`` is a ``shared.calendar.DurationUnit`` value: working_days, working_hours,
    calendar_days, same_day or none.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    value: Decimal = Field(ge=0)
    unit: str


class ChainStep(BaseModel):
    """One office's share of an inter-agency chain (liên thông)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    office: str
    hours: Decimal = Field(gt=0, description="Working hours of this step.")


class _WithoutContact(Payload):
    """A lifecycle payload: it names no applicant (their contact is ``DossierContact``).

    Events of contract 1 written before contacts had a topic of their own carry an
    ``applicant`` field; it is dropped on reading, so they are still applied (notify takes
    the contact from them, ``services/notify``)."""

    @model_validator(mode="before")
    @classmethod
    def _drop_legacy_applicant(cls, data: Any) -> Any:
        if isinstance(data, dict) and "applicant" in data:
            return {k: v for k, v in data.items() if k != "applicant"}
        return data


class DossierContact(Payload):
    """How to reach the applicant of a dossier, for notify alone (its own topic).

    Intake publishes it with the dossier's first lifecycle event (``dossier.submitted`` or
    ``dossier.received``), in the same transaction, keyed by the dossier code. The two
    topics are read independently, so a receiver may see either first.
    """

    event_type: ClassVar[str] = "dossier.contact"
    topic: ClassVar[TopicSpec] = DOSSIER_CONTACTS

    applicant: Contact
    procedure_code: str
    receiving_unit: str


class DossierSubmitted(_WithoutContact):
    """An online dossier was submitted and waits for an officer (mới đăng ký, status 1)."""

    event_type: ClassVar[str] = "dossier.submitted"
    topic: ClassVar[TopicSpec] = DOSSIER_LIFECYCLE

    procedure_code: str
    channel: Channel
    receiving_unit: str
    submitted_at: AwareDatetime


class DossierReceived(_WithoutContact):
    """A dossier was received and its clock started (tiếp nhận hồ sơ, status 2).

    For an online dossier this is the officer's acceptance. The time limit, clock rule and
    catalogue version are those in force at reception: the dossier keeps them.
    """

    event_type: ClassVar[str] = "dossier.received"
    topic: ClassVar[TopicSpec] = DOSSIER_LIFECYCLE

    procedure_code: str
    channel: Channel
    receiving_unit: str
    received_at: AwareDatetime
    due_at: AwareDatetime | None = Field(description="Appointment time (ngày hẹn trả).")
    documents: list[str] = Field(default_factory=list)
    field: str = Field(description="Lĩnh vực of the procedure.")
    time_limit: TimeLimit
    supplement_rule: Literal["pause", "restart"]
    catalogue_version: int


class DossierAction(StrEnum):
    """What an officer or the citizen did to a dossier after submission."""

    REFUSE = "refuse"  # từ chối tiếp nhận (status 3)
    REQUEST_SUPPLEMENT = "request_supplement"  # yêu cầu bổ sung (5): clock stops
    SUBMIT_SUPPLEMENT = "submit_supplement"  # complete dossier back: clock runs again
    REQUEST_PAYMENT = "request_payment"  # nghĩa vụ tài chính (6): clock stops
    PAYMENT_RECEIVED = "payment_received"
    STOP = "stop"  # dừng xử lý (8): clock stops
    RESUME = "resume"
    RESOLVE = "resolve"  # đã xử lý xong (9): end of processing for the statistics
    RETURN_RESULT = "return_result"  # đã trả kết quả (10)
    WITHDRAW_REQUEST = "withdraw_request"  # công dân yêu cầu rút (7)
    WITHDRAW = "withdraw"  # withdrawal confirmed: processing stops (8)
    EXTEND = "extend"  # apology and new date (Mẫu 04): the class is not changed by it
    TRANSFER = "transfer"  # to the next office of the chain


class DossierActionRecorded(Payload):
    """An action on a dossier, in the order intake recorded it (``sequence`` 1, 2, ...)."""

    event_type: ClassVar[str] = "dossier.action"
    topic: ClassVar[TopicSpec] = DOSSIER_LIFECYCLE

    action: DossierAction
    sequence: int = Field(ge=1, description="Per-dossier action number, gap-free.")
    at: AwareDatetime
    status: str = Field(description="Our status after the action.")
    national_status: int = Field(ge=1, le=10)
    reason: str | None = None
    new_due_at: AwareDatetime | None = Field(None, description="With `extend` only.")
    office: str | None = Field(None, description="Acting office, or the next one (`transfer`).")


class DossierRouted(Payload):
    """Routing named the office responsible for a dossier, and its chain of steps."""

    event_type: ClassVar[str] = "dossier.routed"
    topic: ClassVar[TopicSpec] = DOSSIER_ROUTING

    procedure_code: str
    office: str
    field: str
    rule: str = Field(description="Which catalogue entry or rule decided, for the audit trail.")
    catalogue_version: int
    steps: list[ChainStep] = Field(
        default_factory=list, description="The chain in order; the first step is `office`."
    )


class DossierUnroutable(Payload):
    """No office could be named: the dossier waits in the manual queue."""

    event_type: ClassVar[str] = "dossier.unroutable"
    topic: ClassVar[TopicSpec] = DOSSIER_ROUTING

    procedure_code: str
    reason: str


class ClockStarted(Payload):
    """The SLA tracker holds the dossier and keeps its legal clock."""

    event_type: ClassVar[str] = "sla.clock_started"
    topic: ClassVar[TopicSpec] = DOSSIER_SLA

    started_at: AwareDatetime
    due_at: AwareDatetime | None


class SlaWarning(Payload):
    """A warning or flag on a dossier or one step of its chain, emitted once each."""

    event_type: ClassVar[str] = "sla.warning"
    topic: ClassVar[TopicSpec] = DOSSIER_SLA

    kind: Literal["due_soon", "apology_needed", "overdue"]
    step: int | None = Field(None, description="Chain step index (0-based); null: the dossier.")
    office: str | None = None
    due_at: AwareDatetime
    working_hours_left: float
    at: AwareDatetime


class SlaFinished(Payload):
    """Processing ended (result ready, status 9): the final class of the dossier."""

    event_type: ClassVar[str] = "sla.finished"
    topic: ClassVar[TopicSpec] = DOSSIER_SLA

    outcome: Literal["early", "on_time", "late"]
    finished_at: AwareDatetime
    due_at: AwareDatetime | None
    supplement_requests: int
    extended: bool
    office: str | None
    procedure_code: str
    receiving_unit: str
    channel: Channel


class StepDueTime(BaseModel):
    """A chain step's due time as the legal clock holds it."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    step: int = Field(description="Chain step index (0-based).")
    office: str
    started_at: AwareDatetime | None = Field(description="Null: the step has not started.")
    due_at: AwareDatetime | None = Field(description="Null: not started, or no due time.")


class SlaDueTimes(Payload):
    """The legal clock's due times of a dossier and of its chain steps, published by sla
    whenever its fold moves one (the first computation, a pause's end, a restart, a
    transfer, a new chain), in the transaction that stored them: the latest one of a
    dossier holds its current due times, pauses and restarts included."""

    event_type: ClassVar[str] = "sla.due_times"
    topic: ClassVar[TopicSpec] = DOSSIER_SLA

    due_at: AwareDatetime | None = Field(description="The due time of the class.")
    steps: list[StepDueTime] = Field(description="Every chain step, in order; empty: none.")


class SatisfactionLevel(StrEnum):
    """How satisfied the citizen said they were with a dossier's handling (mức độ hài
    lòng), the three levels of the counter's kiosk and of the online form."""

    VERY_SATISFIED = "rat_hai_long"  # rất hài lòng
    SATISFIED = "hai_long"  # hài lòng
    NOT_SATISFIED = "khong_hai_long"  # không hài lòng


class RatingChannel(StrEnum):
    """Where a rating was given."""

    KIOSK = "kiosk"  # at the counter, on the kiosk
    ONLINE = "online"  # POST /api/v1/public/ratings, with the code and phone


class RatingGiven(Payload):
    """The citizen rated a dossier after its result (status 9 or 10), once per dossier.

    No comment text and nothing about the person: only the level and where the dossier
    belongs (procedure, receiving unit, channel), for the reports.
    """

    event_type: ClassVar[str] = "rating.given"
    topic: ClassVar[TopicSpec] = DOSSIER_LIFECYCLE

    level: SatisfactionLevel
    channel: RatingChannel
    at: AwareDatetime
    procedure_code: str
    receiving_unit: str
    dossier_channel: Channel = Field(description="How the dossier itself reached us.")


class SpecialDayRow(BaseModel):
    """A row of a province's special-days table as it travels."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    day: date
    kind: Literal["off", "makeup_workday"]
    description: str
    source: str


class CalendarChanged(Payload):
    """An administrator changed a province's calendar: its edits over the shipped table.

    The edits are complete (not a diff of a diff): a receiver replaces what it held for
    the province with them, so applying the latest event gives the current calendar.
    """

    event_type: ClassVar[str] = "calendar.changed"
    topic: ClassVar[TopicSpec] = CALENDAR

    province: str
    last_year: int | None
    rows: list[SpecialDayRow]
    removed: list[date]


class CataloguePublished(Payload):
    """A version of the procedure catalogue, whole (routing publishes each change).

    ``procedures`` are ``shared.catalogue.Procedure`` dicts (JSON form), all of them: a
    receiver replaces its copy with this version, so applying only the latest version
    gives the current catalogue. Versions only grow; a receiver ignores an older one.
    """

    event_type: ClassVar[str] = "catalogue.published"
    topic: ClassVar[TopicSpec] = CATALOGUE

    version: int = Field(ge=1)
    procedures: list[dict[str, Any]]
    changed_by: str
    change: str = ""


class ApiKeyChanged(Payload):
    """An API key as intake now holds it: issued, or revoked (intake publishes both).

    Carries the SHA-256 of the key's secret, never the secret: a receiver can check a
    key, not make one. Keyed by ``key_id`` on a compacted topic, so the newest state of
    every key stays readable. A revocation is final: a receiver keeps a key revoked
    even if an older "issued" state of it arrives later.

    Intake signs it (``shared.signing``); a receiver ignores an unsigned or badly signed
    one. ``signature`` is optional in the schema so that such an event is read and
    counted, not dead-lettered: whoever can write the topic cannot fill the dead letters.
    """

    event_type: ClassVar[str] = "api_key.changed"
    topic: ClassVar[TopicSpec] = API_KEYS

    key_id: str = Field(pattern=r"^[0-9a-f]{12}$")
    secret_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    role: Literal["counter", "kiosk", "office", "importer", "viewer", "admin"]
    unit: str = Field(min_length=1, max_length=20)
    revoked_at: AwareDatetime | None = None
    signature: str | None = Field(
        None,
        description="HMAC-SHA256 (64 lowercase hex digits) with the keys signing secret over "
        "the envelope's occurred_at and source and this payload's other fields "
        "(shared/signing.py); receivers ignore the event without a valid one.",
    )


PAYLOAD_TYPES: dict[str, type[Payload]] = {
    model.event_type: model
    for model in (
        DossierContact,
        DossierSubmitted,
        DossierReceived,
        DossierActionRecorded,
        DossierRouted,
        DossierUnroutable,
        ClockStarted,
        SlaWarning,
        SlaFinished,
        SlaDueTimes,
        RatingGiven,
        CalendarChanged,
        CataloguePublished,
        ApiKeyChanged,
    )
}

P = TypeVar("P", bound=Payload)

_MODEL_KEY = "_payload_model"
"""Where an envelope keeps its payload's model: in the instance ``__dict__`` under a name
that is not a field (as ``functools.cached_property`` does), so pydantic leaves it out of
equality, ``model_dump`` and ``encode``. A private attribute would not do: pydantic
compares those."""


class Envelope(BaseModel):
    """The one envelope every event travels in."""

    # The docstring above is the envelope's description in docs/asyncapi.json. In code:
    # ``payload`` is the wire form (a dict, raw: a field a model drops on reading, such as
    # a legacy ``applicant``, is still there); ``payload_model`` and ``body`` are the
    # payload as its model, validated once (by ``decode``, by ``wrap`` or by the first
    # read) and kept with the envelope.

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: uuid.UUID
    type: str
    version: int = CONTRACT_VERSION
    occurred_at: AwareDatetime
    dossier_code: str | None
    source: str
    correlation_id: uuid.UUID
    payload: dict[str, Any]

    @classmethod
    def wrap(
        cls,
        payload: Payload,
        *,
        occurred_at: datetime,
        source: str,
        dossier_code: str | None,
        correlation_id: uuid.UUID | None = None,
    ) -> Envelope:
        """Put a payload in a new envelope (a fresh ``event_id``)."""
        event_id = uuid.uuid4()
        envelope = cls(
            event_id=event_id,
            type=payload.event_type,
            occurred_at=occurred_at,
            dossier_code=dossier_code,
            source=source,
            correlation_id=correlation_id or event_id,
            payload=payload.model_dump(mode="json"),
        )
        envelope._keep(payload)
        return envelope

    @property
    def key(self) -> bytes | None:
        """The Kafka key: the dossier code, so a dossier's events stay in order."""
        return self.dossier_code.encode() if self.dossier_code else None

    @property
    def payload_model(self) -> Payload:
        """The payload as the model of its type (``PAYLOAD_TYPES``), validated once.

        ``TypeError`` for a type the contract does not know (``decode`` refuses those);
        ``ValidationError`` for an invalid payload of an envelope ``decode`` did not make.
        """
        kept = self._kept()
        if kept is not None:
            return kept
        model = PAYLOAD_TYPES.get(self.type)
        if model is None:
            msg = f"envelope holds an unknown event type {self.type!r}"
            raise TypeError(msg)
        return self._keep(model.model_validate(self.payload))

    def body(self, model: builtins.type[P]) -> P:
        """The payload as its model; ``TypeError`` if the envelope holds another type.

        Validated once: the model ``decode`` or ``wrap`` kept, or the first read's.
        """
        if self.type != model.event_type:
            msg = f"envelope holds {self.type!r}, not {model.event_type!r}"
            raise TypeError(msg)
        kept = self._kept()
        if isinstance(kept, model):
            return kept
        return self._keep(model.model_validate(self.payload))

    def _kept(self) -> Payload | None:
        """The model kept for the current ``payload``, or ``None``. A copy made with
        another payload (``model_copy(update=...)``) holds another dict, so it does not
        take the model kept for the original's."""
        kept: tuple[dict[str, Any], Payload] | None = self.__dict__.get(_MODEL_KEY)
        if kept is None or kept[0] is not self.payload:
            return None
        return kept[1]

    def _keep(self, model: P) -> P:
        self.__dict__[_MODEL_KEY] = (self.payload, model)
        return model

    def encode(self) -> bytes:
        """The wire form (JSON)."""
        return orjson.dumps(self.model_dump(mode="json"))


class UndecodableEvent(ValueError):
    """A message that is not a valid event of the contract; the reason says why."""


def decode(raw: bytes) -> Envelope:
    """Parse and validate a message: the envelope and its payload's model.

    Raises ``UndecodableEvent`` naming what is wrong (never a bare parser error).
    """
    try:
        envelope = Envelope.model_validate_json(raw)
    except ValidationError as exc:
        raise UndecodableEvent(f"invalid envelope: {_first_error(exc)}") from exc
    model = PAYLOAD_TYPES.get(envelope.type)
    if model is None:
        raise UndecodableEvent(f"unknown event type {envelope.type!r}")
    try:
        envelope._keep(model.model_validate(envelope.payload))
    except ValidationError as exc:
        raise UndecodableEvent(f"invalid {envelope.type} payload: {_first_error(exc)}") from exc
    return envelope


def of_type(events: Iterable[Envelope], model: builtins.type[P]) -> list[tuple[P, Envelope]]:
    """The events of ``model``'s type among ``events``, in order, each with its payload."""
    return [(env.body(model), env) for env in events if env.type == model.event_type]


def _first_error(exc: ValidationError) -> str:
    err = exc.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(p) for p in err["loc"]) or "message"
    return f"{where}: {err['msg']}"
