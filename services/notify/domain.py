"""Pure rules of notify: which messages an event asks for, their keys and texts."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from shared.calendar import format_slip_time
from shared.events import DossierReceived


class Trigger(StrEnum):
    """Why a message is sent."""

    RECEIVED = "received"


class MessageChannel(StrEnum):
    """How a message reaches the citizen."""

    SMS = "sms"
    EMAIL = "email"


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


def message_key(dossier_code: str, trigger: Trigger, channel: MessageChannel) -> str:
    """One message per (dossier, trigger, channel): the key it is stored under before sending."""
    return f"{dossier_code}:{trigger.value}:{channel.value}"


def without_diacritics(text: str) -> str:
    """Vietnamese text in plain ASCII letters, so an SMS fits the GSM alphabet."""
    text = text.replace("đ", "d").replace("Đ", "D")
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _due_text(due_at: datetime | None) -> str:
    return format_slip_time(due_at) if due_at else "không có thời hạn"


def receipt_drafts(dossier_code: str, received: DossierReceived) -> list[Draft]:
    """The receipt (giấy tiếp nhận) for each contact the applicant gave."""
    due = _due_text(received.due_at)
    drafts: list[Draft] = []
    if received.applicant.phone:
        sms = without_diacritics(f"Hồ sơ {dossier_code} đã được tiếp nhận. Hẹn trả kết quả: {due}.")
        drafts.append(
            Draft(
                key=message_key(dossier_code, Trigger.RECEIVED, MessageChannel.SMS),
                dossier_code=dossier_code,
                trigger=Trigger.RECEIVED,
                channel=MessageChannel.SMS,
                recipient=received.applicant.phone,
                subject=None,
                body=sms,
            )
        )
    if received.applicant.email:
        drafts.append(
            Draft(
                key=message_key(dossier_code, Trigger.RECEIVED, MessageChannel.EMAIL),
                dossier_code=dossier_code,
                trigger=Trigger.RECEIVED,
                channel=MessageChannel.EMAIL,
                recipient=received.applicant.email,
                subject=f"Tiếp nhận hồ sơ {dossier_code}",
                body=(
                    f"Kính gửi {received.applicant.name},\n\n"
                    f"Hồ sơ {dossier_code} (thủ tục {received.procedure_code}) đã được tiếp nhận.\n"
                    f"Thời gian hẹn trả kết quả: {due}.\n"
                ),
            )
        )
    return drafts
