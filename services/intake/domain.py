"""Pure rules of intake: dossier codes, the lifecycle state machine, validation.

No I/O here: every function takes what it needs and returns a decision.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from shared.calendar import VN_TZ
from shared.catalogue import Catalogue
from shared.errors import Conflict, InvalidFields
from shared.events import Channel, DossierAction

# Vietnamese mobile numbers: 0 or +84 then a carrier prefix 3, 5, 7, 8 or 9 and 8 digits.
MOBILE_PATTERN = r"^(?:\+84|0)(?:3|5|7|8|9)\d{8}$"
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
ID_NUMBER_PATTERN = r"^(?:\d{9}|\d{12})$"  # old 9-digit CMND or 12-digit CCCD

_CODE_RE = re.compile(r"^(?P<unit>\d{3}\.\d{2}\.\d{2}\.[A-Z]\d{2})-(?P<day>\d{6})-(?P<seq>\d{4,})$")
_MOBILE_RE = re.compile(MOBILE_PATTERN)


class DossierStatus(StrEnum):
    """Our states of a dossier; ``national_code`` maps them onto the national portal's."""

    SUBMITTED = "submitted"  # mới đăng ký (online, not yet accepted)
    RECEIVED = "received"  # được tiếp nhận
    REFUSED = "refused"  # không được tiếp nhận
    PROCESSING = "processing"  # đang xử lý
    SUPPLEMENT_REQUESTED = "supplement_requested"  # yêu cầu bổ sung
    PAYMENT_REQUESTED = "payment_requested"  # yêu cầu thực hiện nghĩa vụ tài chính
    WITHDRAWAL_REQUESTED = "withdrawal_requested"  # công dân yêu cầu rút hồ sơ
    STOPPED = "stopped"  # dừng xử lý
    WITHDRAWN = "withdrawn"  # rút hồ sơ, confirmed: processing stopped for good
    RESOLVED = "resolved"  # đã xử lý xong
    RETURNED = "returned"  # đã trả kết quả

    @property
    def national_code(self) -> int:
        """The status code of the national public-service portal (1–10)."""
        return _NATIONAL[self]


STATUS_TEXT = {
    DossierStatus.SUBMITTED: "Mới đăng ký, chờ cán bộ tiếp nhận",
    DossierStatus.RECEIVED: "Đã tiếp nhận",
    DossierStatus.REFUSED: "Không được tiếp nhận",
    DossierStatus.PROCESSING: "Đang giải quyết",
    DossierStatus.SUPPLEMENT_REQUESTED: "Cần bổ sung hồ sơ: xin liên hệ nơi đã nộp",
    DossierStatus.PAYMENT_REQUESTED: "Chờ thực hiện nghĩa vụ tài chính",
    DossierStatus.WITHDRAWAL_REQUESTED: "Đang xem xét yêu cầu rút hồ sơ",
    DossierStatus.STOPPED: "Dừng giải quyết",
    DossierStatus.WITHDRAWN: "Đã rút hồ sơ",
    DossierStatus.RESOLVED: "Đã có kết quả, mời nhận kết quả",
    DossierStatus.RETURNED: "Đã trả kết quả",
}
"""What the citizen reads for each state (the public look-up)."""

_NATIONAL = {
    DossierStatus.SUBMITTED: 1,
    DossierStatus.RECEIVED: 2,
    DossierStatus.REFUSED: 3,
    DossierStatus.PROCESSING: 4,
    DossierStatus.SUPPLEMENT_REQUESTED: 5,
    DossierStatus.PAYMENT_REQUESTED: 6,
    DossierStatus.WITHDRAWAL_REQUESTED: 7,
    DossierStatus.STOPPED: 8,
    DossierStatus.WITHDRAWN: 8,
    DossierStatus.RESOLVED: 9,
    DossierStatus.RETURNED: 10,
}


class Command(StrEnum):
    """What may be done to a dossier over ``POST .../actions``.

    Every command but ``accept`` is a ``DossierAction`` of the contract and travels as
    ``dossier.action``; ``accept`` starts the clock and travels as ``dossier.received``.
    """

    ACCEPT = "accept"
    REFUSE = DossierAction.REFUSE.value
    REQUEST_SUPPLEMENT = DossierAction.REQUEST_SUPPLEMENT.value
    SUBMIT_SUPPLEMENT = DossierAction.SUBMIT_SUPPLEMENT.value
    REQUEST_PAYMENT = DossierAction.REQUEST_PAYMENT.value
    PAYMENT_RECEIVED = DossierAction.PAYMENT_RECEIVED.value
    STOP = DossierAction.STOP.value
    RESUME = DossierAction.RESUME.value
    RESOLVE = DossierAction.RESOLVE.value
    RETURN_RESULT = DossierAction.RETURN_RESULT.value
    WITHDRAW_REQUEST = DossierAction.WITHDRAW_REQUEST.value
    WITHDRAW = DossierAction.WITHDRAW.value
    EXTEND = DossierAction.EXTEND.value
    TRANSFER = DossierAction.TRANSFER.value

    @property
    def contract_action(self) -> DossierAction | None:
        """The contract's action, or ``None`` for ``accept``."""
        return None if self is Command.ACCEPT else DossierAction(self.value)


S = DossierStatus
_OPEN = frozenset({S.RECEIVED, S.PROCESSING})
_WAITING = frozenset({S.SUPPLEMENT_REQUESTED, S.PAYMENT_REQUESTED})
_IN_PROGRESS = _OPEN | _WAITING

FINISHED = frozenset({S.REFUSED, S.WITHDRAWN, S.RESOLVED, S.RETURNED})
"""States after which no due time can be missed any more."""
UNFINISHED = frozenset(DossierStatus) - FINISHED

WITH_RESULT = frozenset({S.RESOLVED, S.RETURNED})
"""States in which the dossier has its result (national 9 or 10): the citizen may rate."""

RATING_COMMENT_MAX = 500
"""The longest comment a rating may carry (characters)."""


def is_overdue(
    status: DossierStatus, due_at: datetime | None, extended_due_at: datetime | None, now: datetime
) -> bool:
    """Whether a dossier is past its due time in force (the apology's new date, else the
    appointment) at ``now`` and not finished. Pauses are sla's clock, not this one: this
    is the date the citizen was promised."""
    due = extended_due_at or due_at
    return status in UNFINISHED and due is not None and due < now


# command -> (states it is legal in, state after it; None keeps the state)
TRANSITIONS: dict[Command, tuple[frozenset[DossierStatus], DossierStatus | None]] = {
    Command.ACCEPT: (frozenset({S.SUBMITTED}), S.RECEIVED),
    Command.REFUSE: (frozenset({S.SUBMITTED}), S.REFUSED),
    Command.REQUEST_SUPPLEMENT: (_OPEN, S.SUPPLEMENT_REQUESTED),
    Command.SUBMIT_SUPPLEMENT: (frozenset({S.SUPPLEMENT_REQUESTED}), S.PROCESSING),
    Command.REQUEST_PAYMENT: (_OPEN, S.PAYMENT_REQUESTED),
    Command.PAYMENT_RECEIVED: (frozenset({S.PAYMENT_REQUESTED}), S.PROCESSING),
    Command.STOP: (_IN_PROGRESS, S.STOPPED),
    # resume also declines a withdrawal request: processing goes on
    Command.RESUME: (frozenset({S.STOPPED, S.WITHDRAWAL_REQUESTED}), S.PROCESSING),
    Command.RESOLVE: (_OPEN, S.RESOLVED),
    Command.RETURN_RESULT: (frozenset({S.RESOLVED}), S.RETURNED),
    Command.WITHDRAW_REQUEST: (_IN_PROGRESS | {S.STOPPED}, S.WITHDRAWAL_REQUESTED),
    Command.WITHDRAW: (frozenset({S.WITHDRAWAL_REQUESTED}), S.WITHDRAWN),
    Command.EXTEND: (_IN_PROGRESS, None),
    Command.TRANSFER: (_OPEN, S.PROCESSING),
}

REASON_REQUIRED = frozenset({Command.REFUSE, Command.STOP, Command.EXTEND, Command.WITHDRAW})

# Who may give each command besides ``admin`` and ``importer`` (who may give all).
COMMAND_ROLES: dict[Command, frozenset[str]] = {
    Command.ACCEPT: frozenset({"counter"}),
    Command.REFUSE: frozenset({"counter"}),
    Command.REQUEST_SUPPLEMENT: frozenset({"counter", "office"}),
    Command.SUBMIT_SUPPLEMENT: frozenset({"counter", "office"}),
    Command.REQUEST_PAYMENT: frozenset({"counter", "office"}),
    Command.PAYMENT_RECEIVED: frozenset({"counter", "office"}),
    Command.STOP: frozenset({"office"}),
    Command.RESUME: frozenset({"office"}),
    Command.RESOLVE: frozenset({"office"}),
    Command.RETURN_RESULT: frozenset({"counter"}),
    Command.WITHDRAW_REQUEST: frozenset({"counter"}),
    Command.WITHDRAW: frozenset({"counter", "office"}),
    Command.EXTEND: frozenset({"office"}),
    Command.TRANSFER: frozenset({"office"}),
}


class IllegalTransition(Conflict, ValueError):
    """A command that the dossier's current state does not allow (409; the answer also
    gives the current ``status`` and its ``national_status``)."""

    def __init__(self, command: Command, current: DossierStatus, why: str | None = None) -> None:
        self.command = command
        self.current = current
        message = why or f"{command.value} is not allowed when the dossier is {current.value}"
        super().__init__(message)

    def body(self) -> dict[str, Any]:
        """The message, the current status and its national code."""
        return {
            **super().body(),
            "status": self.current.value,
            "national_status": self.current.national_code,
        }


class InvalidCommand(InvalidFields, ValueError):
    """A command whose own fields are wrong; ``field`` names the culprit (422)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__([(field, message)])
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class CommandInput:
    """A command with its fields, as the API validated their shapes."""

    command: Command
    at: datetime
    reason: str | None = None
    new_due_at: datetime | None = None
    office: str | None = None


@dataclass(frozen=True, slots=True)
class DossierState:
    """What the state machine needs to know about a dossier."""

    status: DossierStatus
    due_at: datetime | None
    extended_due_at: datetime | None
    extensions: int
    last_event_at: datetime


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of a legal command: the new status and the due time in force."""

    status: DossierStatus
    extended_due_at: datetime | None
    extensions: int


EXTENSION_MAX_DAYS = 90
"""Default of how far (calendar days) past the due time in force an extension may go."""


def decide(
    state: DossierState,
    cmd: CommandInput,
    *,
    extension_limit: int,
    extension_max_days: int = EXTENSION_MAX_DAYS,
) -> Decision:
    """Apply ``cmd`` to ``state``, or raise.

    Invariants: a command outside ``TRANSITIONS[cmd]``'s source states raises
    ``IllegalTransition`` naming the current state; a command's own fields are checked
    (``InvalidCommand`` naming the field) before the transition is taken; ``extend`` is
    legal at most ``extension_limit`` times and only to a later time than the one in
    force, at most ``extension_max_days`` after it, and never changes ``due_at`` (the
    statistics keep the original).
    """
    sources, target = TRANSITIONS[cmd.command]
    _check_fields(state, cmd, extension_max_days)
    if state.status not in sources:
        raise IllegalTransition(cmd.command, state.status)
    if cmd.command is Command.EXTEND:
        if state.extensions >= extension_limit:
            raise IllegalTransition(
                cmd.command,
                state.status,
                f"extend: the limit of {extension_limit} extension(s) per dossier is reached",
            )
        return Decision(state.status, cmd.new_due_at, state.extensions + 1)
    return Decision(target or state.status, state.extended_due_at, state.extensions)


def _check_fields(state: DossierState, cmd: CommandInput, extension_max_days: int) -> None:
    if cmd.at.tzinfo is None:
        raise InvalidCommand("at", "must be timezone-aware")
    if cmd.at < state.last_event_at:
        raise InvalidCommand("at", "is before the dossier's last recorded event")
    if cmd.command in REASON_REQUIRED and not (cmd.reason and cmd.reason.strip()):
        raise InvalidCommand("reason", f"{cmd.command.value} needs a reason")
    if cmd.command is Command.EXTEND:
        if cmd.new_due_at is None:
            raise InvalidCommand("new_due_at", "extend needs the new due time")
        current = state.extended_due_at or state.due_at
        if cmd.new_due_at.tzinfo is None:
            raise InvalidCommand("new_due_at", "must be timezone-aware")
        if current is not None and cmd.new_due_at <= current:
            raise InvalidCommand("new_due_at", "must be later than the due time in force")
        if cmd.new_due_at > (current or cmd.at) + timedelta(days=extension_max_days):
            raise InvalidCommand(
                "new_due_at",
                f"must be at most {extension_max_days} days after the due time in force "
                "(MOTCUA_INTAKE_EXTENSION_MAX_DAYS)",
            )
    elif cmd.new_due_at is not None:
        raise InvalidCommand("new_due_at", "only extend takes a new due time")
    if cmd.command is Command.TRANSFER and not cmd.office:
        raise InvalidCommand("office", "transfer needs the next office")


def may_give(role: str, command: Command) -> bool:
    """Whether a key of ``role`` may give ``command`` (admin and importer may give all)."""
    return role in {"admin", "importer"} or role in COMMAND_ROLES[command]


def normalise_phone(phone: str) -> str | None:
    """A Vietnamese mobile number as ``0xxxxxxxxx`` (``+84`` folded), ``None`` if not one."""
    compact = re.sub(r"[\s.\-]", "", phone)
    if not _MOBILE_RE.match(compact):
        return None
    return "0" + compact[3:] if compact.startswith("+84") else compact


def reception_day(at: datetime) -> date:
    """The reception date in Vietnam time (the date in the dossier code)."""
    if at.tzinfo is None:
        msg = "reception time must be timezone-aware"
        raise ValueError(msg)
    return at.astimezone(VN_TZ).date()


def dossier_code(unit: str, day: date, sequence: int) -> str:
    """``<agency code>-YYMMDD-NNNN`` (mã hồ sơ); the sequence restarts each day per unit.

    Four digits as the rule says; a unit receiving more than 9,999 dossiers in a day
    gets a fifth digit rather than a collision.
    """
    if sequence < 1:
        msg = f"sequence must be positive, got {sequence}"
        raise ValueError(msg)
    return f"{unit}-{day:%y%m%d}-{sequence:04d}"


def parse_dossier_code(code: str) -> tuple[str, str, int] | None:
    """Split a code into (unit, YYMMDD, sequence), or ``None`` if it is not one."""
    match = _CODE_RE.match(code)
    if match is None:
        return None
    return match["unit"], match["day"], int(match["seq"])


def initial_status(channel: Channel) -> DossierStatus:
    """Online dossiers wait for an officer's acceptance; the others are received at once."""
    return DossierStatus.SUBMITTED if channel is Channel.ONLINE else DossierStatus.RECEIVED


def catalogue_errors(catalogue: Catalogue, procedure_code: str) -> list[tuple[str, str]]:
    """Field errors (field, message) of a dossier against the catalogue."""
    if catalogue.get(procedure_code) is None:
        return [("procedure_code", f"unknown procedure {procedure_code!r}")]
    return []


class BadCursor(ValueError):
    """A list cursor this service did not make, or made for another sort."""


def encode_cursor(sort: str, at: datetime | None, code: str) -> str:
    """An opaque cursor: the sort and the last row's sort value and code (URL-safe)."""
    raw = json.dumps([sort, None if at is None else at.isoformat(), code], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, sort: str) -> tuple[datetime | None, str]:
    """The (sort value, code) in a cursor of :func:`encode_cursor` for ``sort``;
    :class:`BadCursor` for anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        made_for, at, code = json.loads(raw)
        when = None if at is None else datetime.fromisoformat(at)
    except (ValueError, TypeError) as exc:
        raise BadCursor("not a cursor of this list") from exc
    if made_for != sort or not isinstance(code, str) or (when and when.tzinfo is None):
        raise BadCursor(f"not a cursor of this list sorted by {sort}")
    return when, code
