"""Pure rules of notify: which notices and office warnings events ask for, their keys,
SMS fitting, timing.

No I/O here. The texts themselves come from the Jinja2 templates (``render.py``).
"""

from __future__ import annotations

import hashlib
import hmac
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from enum import StrEnum

from shared.calendar import VN_TZ, format_slip_time
from shared.events import (
    DossierAction,
    DossierActionRecorded,
    DossierReceived,
    Envelope,
    SlaFinished,
    SlaWarning,
)
from shared.handlers import Handlers


class Trigger(StrEnum):
    """Why a message is sent."""

    RECEIVED = "received"  # tiếp nhận: code and due time
    SUPPLEMENT_REQUESTED = "supplement_requested"  # yêu cầu bổ sung
    PAYMENT_REQUESTED = "payment_requested"  # nghĩa vụ tài chính
    RESULT_READY = "result_ready"  # có kết quả: come and collect
    REFUSED = "refused"  # từ chối
    STOPPED = "stopped"  # dừng xử lý (stop or withdrawal)
    APOLOGY = "apology"  # thư xin lỗi (form 4) when the office records ``extend``: new date
    OVERDUE = "overdue"  # quá hạn: the due time has passed and there is no result yet


class MessageChannel(StrEnum):
    """How a message reaches the citizen."""

    SMS = "sms"
    EMAIL = "email"


ACTION_TRIGGERS: dict[DossierAction, Trigger] = {
    DossierAction.REFUSE: Trigger.REFUSED,
    DossierAction.REQUEST_SUPPLEMENT: Trigger.SUPPLEMENT_REQUESTED,
    DossierAction.REQUEST_PAYMENT: Trigger.PAYMENT_REQUESTED,
    DossierAction.RESOLVE: Trigger.RESULT_READY,
    DossierAction.STOP: Trigger.STOPPED,
    DossierAction.WITHDRAW: Trigger.STOPPED,
    DossierAction.EXTEND: Trigger.APOLOGY,
}
"""Actions a citizen is told about; every other action sends nothing."""


@dataclass(frozen=True, slots=True)
class Notice:
    """Something to tell the applicant of a dossier, before choosing channels.

    ``occurrence`` tells repeatable triggers apart (the action's per-dossier
    ``sequence``: a second supplement request is a second message); it is empty for
    once-only triggers (received, overdue), so a repeated event maps to the same notice.
    """

    dossier_code: str
    trigger: Trigger
    occurrence: str = ""
    facts: Mapping[str, str] = field(default_factory=dict)


def notice_key(dossier_code: str, trigger: Trigger, occurrence: str = "") -> str:
    """One notice per (dossier, trigger[, occurrence]): ``<dossier>:<trigger>[#<occurrence>]``
    (a notice waiting for its contact is stored under it)."""
    suffix = f"#{occurrence}" if occurrence else ""
    return f"{dossier_code}:{trigger.value}{suffix}"


def message_key(
    dossier_code: str, trigger: Trigger, channel: MessageChannel, occurrence: str = ""
) -> str:
    """One message per (dossier, trigger[, occurrence], channel): stored under it before sending."""
    return f"{notice_key(dossier_code, trigger, occurrence)}:{channel.value}"


def short_time(moment: datetime) -> str:
    """``HH:MM dd/mm/yyyy`` in Vietnam time: the SMS form of an appointment."""
    return f"{moment.astimezone(VN_TZ):%H:%M %d/%m/%Y}"


def _times(moment: datetime | None, prefix: str) -> dict[str, str]:
    if moment is None:
        return {}
    return {prefix: format_slip_time(moment), f"{prefix}_short": short_time(moment)}


_NOTICES: Handlers[Notice | None] = Handlers()
"""The notice each payload type asks for (``notice_of``, which checks the dossier code)."""


def notice_of(envelope: Envelope) -> Notice | None:
    """The notice an event asks for the citizen, or ``None``.

    Of the SLA warnings only the dossier-level ``overdue`` tells the citizen anything
    (sla emits it once the due time has passed with no result). ``due_soon`` and
    ``apology_needed`` come before the due time and are for the office
    (``office_warning_of``), as is every warning about one step of a chain: the citizen
    hears of a delay from the apology the office sends when it records ``extend``.
    """
    if not envelope.dossier_code:
        return None
    return _NOTICES.handle(envelope)


@_NOTICES.on(DossierReceived)
def _received_notice(received: DossierReceived, envelope: Envelope) -> Notice | None:
    code = envelope.dossier_code or ""
    return Notice(code, Trigger.RECEIVED, facts=_times(received.due_at, "due"))


@_NOTICES.on(DossierActionRecorded)
def _action_notice(action: DossierActionRecorded, envelope: Envelope) -> Notice | None:
    trigger = ACTION_TRIGGERS.get(action.action)
    if trigger is None:
        return None
    # The clerk's free-text reason never goes into a message: an SMS or e-mail under the
    # official sender that carries whatever a request typed (an account number, a link)
    # is a phishing channel. The citizen reads the reason at the counter or in the look-up.
    code = envelope.dossier_code or ""
    return Notice(
        code, trigger, occurrence=str(action.sequence), facts=_times(action.new_due_at, "new_due")
    )


@_NOTICES.on(SlaWarning)
def _overdue_notice(warning: SlaWarning, envelope: Envelope) -> Notice | None:
    if warning.step is not None or warning.kind != "overdue":
        return None
    code = envelope.dossier_code or ""
    return Notice(code, Trigger.OVERDUE, facts=_times(warning.due_at, "due"))


OFFICE_WARNING_TRIGGER = "office_warning"
"""The ``trigger`` of a warning e-mailed to an office head (not a citizen ``Trigger``)."""
OFFICE_WARNING_KIND = "apology_needed"
"""The ``sla.warning`` kind e-mailed to an office head."""


ENDING_ACTIONS = frozenset(
    {
        DossierAction.RESOLVE,
        DossierAction.RETURN_RESULT,
        DossierAction.REFUSE,
        DossierAction.STOP,
        DossierAction.WITHDRAW,
    }
)
"""Actions that end or stop processing: after one, "no result yet" is no longer true."""

SUPERSEDED_TRIGGERS = frozenset({Trigger.OVERDUE.value, OFFICE_WARNING_TRIGGER})
"""Triggers of messages about lateness: a queued one is superseded when processing ends."""


def ends_processing(envelope: Envelope) -> bool:
    """Whether an event says the dossier's processing ended or stopped: the result is
    ready (``resolve``, ``return_result``, or sla's ``sla.finished``), or the dossier was
    refused, stopped or withdrawn."""
    if envelope.type == SlaFinished.event_type:
        return True
    if envelope.type == DossierActionRecorded.event_type:
        return envelope.body(DossierActionRecorded).action in ENDING_ACTIONS
    return False


def resumes_processing(envelope: Envelope) -> bool:
    """Whether an event takes up processing a stop had ended (``resume``)."""
    return (
        envelope.type == DossierActionRecorded.event_type
        and envelope.body(DossierActionRecorded).action is DossierAction.RESUME
    )


@dataclass(frozen=True, slots=True)
class OfficeWarning:
    """A dossier that needs the apology letter (form 4) soon: sla's dossier-level
    ``apology_needed``, a few working hours before the due time with no result yet.

    Holds no personal data: the dossier code, the office sla named (if any), the due time
    and the working time left.
    """

    dossier_code: str
    office: str | None
    due_at: datetime
    working_hours_left: float

    def heads_to_try(self, receiving_unit: str | None) -> list[str]:
        """Units whose head is told, in order: the warned office, then the dossier's
        receiving unit (the one-stop unit through which form 4 is issued)."""
        return list(dict.fromkeys(u for u in (self.office, receiving_unit) if u))

    def facts(self) -> dict[str, str]:
        """What the head's e-mail says of the deadline: due time written out, time left."""
        return {
            **_times(self.due_at, "due"),
            "left": working_time_text(self.working_hours_left),
        }


def office_warning_of(envelope: Envelope) -> OfficeWarning | None:
    """The warning an office head is e-mailed, or ``None``: the dossier-level
    ``apology_needed`` only (``due_soon`` and step-level warnings are on the dashboard,
    ``overdue`` in the dashboard's and the digest's overdue lists)."""
    code = envelope.dossier_code
    if not code or envelope.type != SlaWarning.event_type:
        return None
    warning = envelope.body(SlaWarning)
    if warning.step is not None or warning.kind != OFFICE_WARNING_KIND:
        return None
    return OfficeWarning(code, warning.office, warning.due_at, warning.working_hours_left)


def office_warning_key(dossier_code: str) -> str:
    """One warning e-mail per dossier (sla emits ``apology_needed`` once per dossier),
    stored under this key before sending, like a citizen message's."""
    return f"{dossier_code}:{OFFICE_WARNING_TRIGGER}:{MessageChannel.EMAIL.value}"


def working_time_text(hours: float) -> str:
    """Working hours as an e-mail says them, to the minute: ``2 giờ 30 phút``, ``45 phút``,
    ``3 giờ``; never negative."""
    whole, minutes = divmod(max(0, round(hours * 60)), 60)
    if not whole:
        return f"{minutes} phút"
    return f"{whole} giờ" + (f" {minutes} phút" if minutes else "")


ANY = "*"
"""Wildcard of a toggle's procedure or unit."""

Toggles = Mapping[tuple[str, str, str], bool]
"""(procedure_code or ``*``, receiving_unit or ``*``, trigger) → on/off."""


def is_enabled(toggles: Toggles, procedure_code: str, unit: str, trigger: Trigger) -> bool:
    """Whether a trigger sends for a procedure at a unit; the most specific toggle wins.

    Order: (procedure, unit), (procedure, *), (*, unit), (*, *); nothing set → on.
    """
    for proc, where in ((procedure_code, unit), (procedure_code, ANY), (ANY, unit), (ANY, ANY)):
        value = toggles.get((proc, where, trigger.value))
        if value is not None:
            return value
    return True


def contact_fingerprint(contact: str, secret: bytes) -> str:
    """A keyed one-way fingerprint (HMAC-SHA256 under ``secret``) of a phone or e-mail, so
    opt-outs store no personal data. Keyed, because a plain hash of a phone number is
    reversed in minutes by hashing every number; without the secret it cannot be.

    Phones compare by digits with a leading ``84`` read as ``0``; e-mails case-insensitively.
    """
    value = contact.strip().lower()
    if "@" not in value:
        digits = "".join(c for c in value if c.isdigit())
        value = "0" + digits[2:] if digits.startswith("84") else digits
    return hmac.new(secret, value.encode(), hashlib.sha256).hexdigest()


# GSM 03.38: the basic set costs one septet, the extension set two (escape + char).
_GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENDED = frozenset("^{}\\[~]|€")
SINGLE_SEGMENT = 160
MULTI_SEGMENT = 153
ELLIPSIS = "..."


def without_diacritics(text: str) -> str:
    """Vietnamese text in plain ASCII letters, so an SMS fits the GSM alphabet."""
    text = text.replace("đ", "d").replace("Đ", "D")
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def gsm_septets(text: str) -> int:
    """Length of ``text`` in GSM-7 septets (extension characters count two)."""
    return len(text) + sum(text.count(c) for c in _GSM_EXTENDED)


def sms_segments(text: str) -> int:
    """Segments an SMS of GSM-7 ``text`` takes: 1 up to 160 septets, else ceil(n / 153)."""
    septets = gsm_septets(text)
    if septets <= SINGLE_SEGMENT:
        return 1
    return -(-septets // MULTI_SEGMENT)


_CACHED_BELOW = 0x3000
"""Characters below this (Latin with every Vietnamese letter, combining marks, symbols)
keep their SMS form in ``_SMS_CHARS``; rarer ones are worked out each time, so that no
text can grow the table past a few thousand entries."""


class _SmsChars(dict[int, str]):
    """Each character's SMS form (``str.translate`` table): no diacritics, and ``?`` for
    whatever is outside GSM-7. Character by character equals ``fit_sms``'s whole-text
    rule, because NFD decomposes each character on its own and only reorders combining
    marks, which are all dropped."""

    def __missing__(self, code: int) -> str:
        plain = without_diacritics(chr(code))
        form = "".join(c if c in _GSM_BASIC or c in _GSM_EXTENDED else "?" for c in plain)
        if code < _CACHED_BELOW:
            self[code] = form
        return form


_SMS_CHARS = _SmsChars()


def fit_sms(text: str, max_segments: int) -> str:
    """The SMS form of ``text``: GSM-7 only and at most ``max_segments`` segments.

    Rule: diacritics are removed, any character outside GSM-7 becomes ``?``, runs of
    whitespace become one space. A text still too long is cut at the last space that
    leaves room for ``...`` within the budget (160 septets for one segment, 153 × n for
    n) and ``...`` is appended; templates therefore put the dossier code and the date
    first, so a cut loses only the courtesy tail.
    """
    gsm = " ".join(text.translate(_SMS_CHARS).split())
    budget = SINGLE_SEGMENT if max_segments == 1 else MULTI_SEGMENT * max_segments
    if gsm_septets(gsm) <= budget:
        return gsm
    room = budget - len(ELLIPSIS)
    kept: list[str] = []
    used = 0
    for char in gsm:
        used += gsm_septets(char)
        if used > room:
            break
        kept.append(char)
    cut = "".join(kept)
    space = cut.rfind(" ")
    if space > room // 2:
        cut = cut[:space]
    return cut.rstrip(" ,.;:") + ELLIPSIS


def in_quiet_hours(moment: datetime, start: time, end: time) -> bool:
    """Whether ``moment`` (any zone) falls in SMS quiet hours, read in Vietnam time.

    ``start`` inclusive, ``end`` exclusive; a window over midnight (21:00–07:00) works.
    """
    local = moment.astimezone(VN_TZ).time()
    if start <= end:
        return start <= local < end
    return local >= start or local < end


def retry_delay(attempts: int, base_seconds: float, max_seconds: float) -> timedelta:
    """Delay before the next try after ``attempts`` failed ones: base × 2^(attempts−1), capped."""
    return timedelta(seconds=min(max_seconds, base_seconds * 2 ** max(0, attempts - 1)))


@dataclass(frozen=True, slots=True)
class Addressee:
    """Whom a dossier's messages go to, as notify stored it. Personal data: never logged."""

    name: str
    phone: str | None
    email: str | None
    procedure_code: str
    receiving_unit: str


@dataclass(frozen=True, slots=True)
class Draft:
    """A message to send: its deterministic key makes it exactly-once per channel."""

    key: str
    dossier_code: str
    trigger: Trigger
    channel: MessageChannel
    recipient: str
    subject: str | None
    body: str


FACT_NAMES = ("due", "due_short", "new_due", "new_due_short")
"""Facts a template may use besides code, name, procedure_code and unit; absent ones are ''.
Structured values only: no free text from a request (see ``_action_notice``)."""
