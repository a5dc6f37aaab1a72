"""Notify's tables: messages under their keys, addressees, notices waiting for a contact,
opt-outs, trigger toggles, office heads; the message statuses; the rows built without a
statement (an e-mail to an office head, opt-out targets).

Personal data (recipient, body, names, phones, e-mails) lives only in ``message``,
``message_html``, ``addressee`` and ``office_head``; a message's is blanked once it is final
and older than ``message_retention_days``, and a dossier's addressee is deleted that long
after its processing ended (``Notifier.purge_expired``). Opt-outs by contact store a keyed
one-way fingerprint (HMAC-SHA256), never the contact.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, Column, Index, Integer, String, Table, Text
from sqlmodel import Field, SQLModel

from shared.db import AwareDateTime, table

QUEUED = "queued"  # waiting for its turn (next_attempt_at, quiet hours)
SENDING = "sending"  # claimed by a dispatcher; handed to a channel
SENT = "sent"  # accepted by the SMTP server or the SMS gateway
DELIVERED = "delivered"  # the gateway reported delivery to the handset
FAILED = "failed"  # permanent error, or temporary ones up to the attempt limit
UNKNOWN = "unknown"  # interrupted during send on a channel that cannot be repeated safely
SUPPRESSED = "suppressed"  # the citizen opted out before it was sent
SUPERSEDED = "superseded"  # no longer true when its turn came: processing ended first
STATUSES = (QUEUED, SENDING, SENT, DELIVERED, FAILED, UNKNOWN, SUPPRESSED, SUPERSEDED)
FINAL = (SENT, DELIVERED, FAILED, UNKNOWN, SUPPRESSED, SUPERSEDED)
"""Statuses after which a message is never sent (again): its personal data may go. A
``sent`` SMS may still get its delivery report, which needs only the key."""
PURGED = ""
"""The recipient and body of a message past its retention (the columns are NOT NULL)."""


class Message(SQLModel, table=True):
    """A message to a citizen, or to an office head (a dossier's warning: trigger
    ``office_warning``; a digest: trigger ``digest``, no dossier code), and its delivery
    status. Recipient and body are personal data.

    Invariant: the row is committed (``queued``) before any channel sees it, and it is
    claimed (``sending``, with ``claim`` and ``claimed_at``) in a committed transaction
    before the send, so after a crash the row says a send may have happened.
    """

    __tablename__ = "message"
    __table_args__ = (Index("ix_message_due", "status", "next_attempt_at"),)

    key: str = Field(sa_column=Column(String(160), primary_key=True))
    dossier_code: str = Field(sa_column=Column(String(60), nullable=False, index=True))
    trigger: str = Field(sa_column=Column(String(40), nullable=False))
    channel: str = Field(sa_column=Column(String(10), nullable=False))
    recipient: str = Field(sa_column=Column(String(200), nullable=False))
    subject: str | None = Field(default=None, sa_column=Column(String(300)))
    body: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(sa_column=Column(String(20), nullable=False))
    attempts: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    last_error: str | None = Field(default=None, sa_column=Column(String(300)))
    created_at: datetime = Field(sa_column=Column(AwareDateTime, nullable=False))
    next_attempt_at: datetime = Field(sa_column=Column(AwareDateTime, nullable=False))
    claim: str | None = Field(default=None, sa_column=Column(String(36), index=True))
    claimed_at: datetime | None = Field(default=None, sa_column=Column(AwareDateTime))
    sent_at: datetime | None = Field(default=None, sa_column=Column(AwareDateTime))
    delivered_at: datetime | None = Field(default=None, sa_column=Column(AwareDateTime))
    sink: str | None = Field(default=None, sa_column=Column(String(20)))
    provider_id: str | None = Field(default=None, sa_column=Column(String(100)))


class MessageHtml(SQLModel, table=True):
    """The HTML alternative of an e-mail message (the digest's), stored with its message.

    A table of its own so that the ``message`` table keeps its shape; inserted in the
    transaction that inserts the message, read by the dispatcher with the claimed rows.
    """

    __tablename__ = "message_html"

    key: str = Field(sa_column=Column(String(160), primary_key=True))
    html: str = Field(sa_column=Column(Text, nullable=False))


class AddresseeRow(SQLModel, table=True):
    """How to reach a dossier's applicant, from ``dossier.contact`` (or, for events of
    contract 1, ``dossier.submitted`` / ``dossier.received``). Deleted
    ``message_retention_days`` after ``ended_at``; kept while processing goes on."""

    __tablename__ = "addressee"

    dossier_code: str = Field(sa_column=Column(String(60), primary_key=True))
    name: str = Field(sa_column=Column(String(200), nullable=False))
    phone: str | None = Field(default=None, sa_column=Column(String(40)))
    email: str | None = Field(default=None, sa_column=Column(String(200)))
    procedure_code: str = Field(sa_column=Column(String(40), nullable=False))
    receiving_unit: str = Field(sa_column=Column(String(60), nullable=False))
    updated_at: datetime = Field(sa_column=Column(AwareDateTime, nullable=False))
    ended_at: datetime | None = Field(
        default=None,
        sa_column=Column(AwareDateTime),
        description="When notify saw the dossier's processing end (result, refusal, stop, "
        "withdrawal); a later event that reopens it (resume) clears it.",
    )


class WaitingNotice(SQLModel, table=True):
    """A notice for a dossier whose contact notify has not received yet.

    Contacts travel on a topic of their own, read independently of the lifecycle, so a
    notice may come first. It waits here (no personal data: the facts are times) and is
    queued, under its own message keys and with its ``created_at``, in the transaction that
    stores the contact. A waiting lateness notice is dropped when processing ends, like a
    queued one; one still waiting after ``message_retention_days`` is deleted.
    """

    __tablename__ = "notice_waiting"
    __table_args__ = (Index("ix_notice_waiting_dossier", "dossier_code"),)

    key: str = Field(
        sa_column=Column(String(160), primary_key=True),
        description="<dossier>:<trigger>[#<occurrence>]: a repeated event waits once.",
    )
    dossier_code: str = Field(sa_column=Column(String(60), nullable=False))
    trigger: str = Field(sa_column=Column(String(40), nullable=False))
    occurrence: str = Field(sa_column=Column(String(20), nullable=False))
    facts: dict[str, str] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(sa_column=Column(AwareDateTime, nullable=False))


class OptOut(SQLModel, table=True):
    """A citizen's opt-out: ``dossier:<code>`` or ``contact:<HMAC-SHA256 fingerprint>``
    (``domain.contact_fingerprint``; rows made before the key, plain SHA-256, match no
    contact any more)."""

    __tablename__ = "opt_out"

    target: str = Field(sa_column=Column(String(100), primary_key=True))
    created_at: datetime = Field(sa_column=Column(AwareDateTime, nullable=False))


class TriggerToggle(SQLModel, table=True):
    """A trigger switched on or off for a procedure and a unit (``*``: any)."""

    __tablename__ = "trigger_toggle"

    procedure_code: str = Field(sa_column=Column(String(40), primary_key=True))
    receiving_unit: str = Field(sa_column=Column(String(60), primary_key=True))
    trigger: str = Field(sa_column=Column(String(40), primary_key=True))
    enabled: bool = Field(sa_column=Column(Boolean, nullable=False))


class OfficeHead(SQLModel, table=True):
    """Who receives a unit's digest and its dossiers' warnings (thủ trưởng cơ quan): name
    and e-mail, personal data.

    ``unit`` is the agency code the report groups by (the receiving unit's code).
    """

    __tablename__ = "office_head"

    unit: str = Field(sa_column=Column(String(60), primary_key=True))
    name: str = Field(sa_column=Column(String(200), nullable=False))
    email: str = Field(sa_column=Column(String(254), nullable=False))
    updated_at: datetime = Field(sa_column=Column(AwareDateTime, nullable=False))


def head_email_values(
    key: str,
    *,
    dossier_code: str,
    trigger: str,
    recipient: str,
    subject: str,
    body: str,
    now: datetime,
) -> dict[str, object]:
    """The ``message`` row (column name to value) of an e-mail to an office head (a warning
    or a digest), queued to be sent at once."""
    return {
        "key": key,
        "dossier_code": dossier_code,
        "trigger": trigger,
        "channel": "email",
        "recipient": recipient,
        "subject": subject,
        "body": body,
        "status": QUEUED,
        "attempts": 0,
        "created_at": now,
        "next_attempt_at": now,
    }


def email_to_head(
    key: str,
    *,
    dossier_code: str,
    trigger: str,
    recipient: str,
    subject: str,
    body: str,
    now: datetime,
) -> Message:
    """An e-mail to an office head (a warning or a digest), queued to be sent at once, as
    an ORM row (``head_email_values``)."""
    return Message.model_validate(
        head_email_values(
            key,
            dossier_code=dossier_code,
            trigger=trigger,
            recipient=recipient,
            subject=subject,
            body=body,
            now=now,
        )
    )


def dossier_target(code: str) -> str:
    """The opt-out target of one dossier."""
    return f"dossier:{code}"


def contact_target(fingerprint: str) -> str:
    """The opt-out target of one contact (by fingerprint)."""
    return f"contact:{fingerprint}"


TABLES: list[Table] = [
    table(Message),
    table(MessageHtml),
    table(AddresseeRow),
    table(WaitingNotice),
    table(OptOut),
    table(TriggerToggle),
    table(OfficeHead),
]
