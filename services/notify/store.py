"""Notify's tables: messages under their keys, addressees, opt-outs, trigger toggles,
office heads.

Personal data (recipient, body, names, phones, e-mails) lives only in ``message``,
``message_html``, ``addressee`` and ``office_head``; a message's is blanked once it is final
and older than ``message_retention_days``, and a dossier's addressee is deleted that long
after its processing ended (``Notifier.purge_expired``). Opt-outs by contact store a keyed
one-way fingerprint (HMAC-SHA256), never the contact.

Every statement notify runs on these tables is a function here, taking the caller's
session: the caller decides the transaction (the inbox transaction of a batch, one of the
dispatcher's small ones), the function states what the statement guards.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Column, Index, Integer, String, Table, Text, case, null
from sqlmodel import Field, SQLModel, col, delete, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from services.notify import domain
from shared.db import AwareDateTime, table, upsert_insert

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
    """An e-mail to an office head (a warning or a digest), queued to be sent at once."""
    return Message(
        key=key,
        dossier_code=dossier_code,
        trigger=trigger,
        channel="email",
        recipient=recipient,
        subject=subject,
        body=body,
        status=QUEUED,
        created_at=now,
        next_attempt_at=now,
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


# --- addressees -------------------------------------------------------------------------


async def addressee(session: AsyncSession, code: str) -> AddresseeRow | None:
    """The addressee of one dossier (``None``: not heard of, or past retention)."""
    return await session.get(AddresseeRow, code)


async def addressees(session: AsyncSession, codes: Collection[str]) -> dict[str, AddresseeRow]:
    """The addressees of these dossiers that are stored, by dossier code (one query)."""
    rows = await session.exec(select(AddresseeRow).where(col(AddresseeRow.dossier_code).in_(codes)))
    return {row.dossier_code: row for row in rows.all()}


async def put_addressees(
    session: AsyncSession, fresh: Mapping[str, AddresseeRow], now: datetime
) -> dict[str, AddresseeRow]:
    """Store these contacts: a new dossier's row is added, a known one's contact, procedure
    and unit are replaced (its ``ended_at`` stays); return the rows as the session now holds
    them, by dossier code (one query)."""
    stored = dict(fresh)
    existing = await addressees(session, list(fresh))
    for code, row in fresh.items():
        known = existing.get(code)
        if known is None:
            session.add(row)
            continue
        known.name, known.phone, known.email = row.name, row.phone, row.email
        known.procedure_code, known.receiving_unit = row.procedure_code, row.receiving_unit
        known.updated_at = now
        session.add(known)
        stored[code] = known
    return stored


async def set_ended(
    session: AsyncSession, codes: Collection[str], ended_at: datetime | None
) -> None:
    """Set (or, ``None``, clear) ``ended_at`` of these dossiers' addressees. Rows added
    earlier in the transaction are flushed first, so a contact stored by the same batch is
    covered too."""
    await session.flush()
    await session.exec(
        update(AddresseeRow)
        .where(col(AddresseeRow.dossier_code).in_(list(codes)))
        .values(ended_at=ended_at)
    )


async def delete_ended_addressees(session: AsyncSession, before: datetime) -> int:
    """Delete the addressees of dossiers whose processing ended before ``before`` (a
    dossier still in process, ``ended_at`` unset, keeps its own); return how many."""
    result = await session.exec(delete(AddresseeRow).where(col(AddresseeRow.ended_at) < before))
    return int(result.rowcount)


# --- notices waiting for a contact ----------------------------------------------------


async def waiting_keys(session: AsyncSession, keys: Collection[str]) -> set[str]:
    """Which of these waiting-notice keys are stored already (one query)."""
    rows = await session.exec(
        select(WaitingNotice.key).where(col(WaitingNotice.key).in_(list(keys)))
    )
    return set(rows.all())


async def take_waiting(session: AsyncSession, codes: Collection[str]) -> list[WaitingNotice]:
    """Delete and return the notices waiting for these dossiers' contacts, in the order
    they came (``created_at``, then key)."""
    codes = list(codes)
    if not codes:
        return []
    rows = (
        await session.exec(
            select(WaitingNotice)
            .where(col(WaitingNotice.dossier_code).in_(codes))
            .order_by(col(WaitingNotice.created_at), col(WaitingNotice.key))
        )
    ).all()
    if not rows:
        return []
    await session.exec(
        delete(WaitingNotice).where(col(WaitingNotice.key).in_([row.key for row in rows]))
    )
    return list(rows)


async def waiting_with_contact(session: AsyncSession) -> set[str]:
    """Dossier codes of the notices still waiting whose addressee is stored (a join)."""
    rows = await session.exec(
        select(WaitingNotice.dossier_code).join(
            AddresseeRow,
            col(AddresseeRow.dossier_code) == col(WaitingNotice.dossier_code),
        )
    )
    return set(rows.all())


async def delete_waiting_before(session: AsyncSession, before: datetime) -> int:
    """Delete the notices that have waited for a contact since before ``before``; return
    how many."""
    result = await session.exec(delete(WaitingNotice).where(col(WaitingNotice.created_at) < before))
    return int(result.rowcount)


# --- messages: queueing -----------------------------------------------------------------


async def stored_keys(session: AsyncSession, keys: Collection[str]) -> set[str]:
    """Which of these message keys are stored already (one query): a key is queued once."""
    rows = await session.exec(select(Message.key).where(col(Message.key).in_(list(keys))))
    return set(rows.all())


async def insert_if_free(session: AsyncSession, message: Message, html: MessageHtml) -> bool:
    """Insert a message and its HTML alternative unless its key is taken (``INSERT ... ON
    CONFLICT DO NOTHING``: a concurrent writer of the same key wins, this adds nothing);
    ``True`` if inserted."""
    inserted = await session.exec(
        upsert_insert(session, table(Message))
        .values(message.model_dump())
        .on_conflict_do_nothing(index_elements=["key"])
    )
    if not inserted.rowcount:
        return False
    await session.exec(
        upsert_insert(session, table(MessageHtml))
        .values(html.model_dump())
        .on_conflict_do_nothing(index_elements=["key"])
    )
    return True


async def supersede_lateness(session: AsyncSession, codes: Collection[str]) -> None:
    """Mark these dossiers' lateness messages (``domain.SUPERSEDED_TRIGGERS``) still
    ``queued`` ``superseded`` (``WHERE status = 'queued'``: one being sent or sent stays),
    and delete such notices still waiting for a contact. Rows added earlier in the
    transaction are flushed first, so one queued by an earlier event of the same batch is
    covered too."""
    await session.flush()
    await session.exec(
        update(Message)
        .where(
            col(Message.dossier_code).in_(codes),
            col(Message.trigger).in_(domain.SUPERSEDED_TRIGGERS),
            col(Message.status) == QUEUED,
        )
        .values(status=SUPERSEDED)
    )
    await session.exec(
        delete(WaitingNotice).where(
            col(WaitingNotice.dossier_code).in_(codes),
            col(WaitingNotice.trigger).in_(domain.SUPERSEDED_TRIGGERS),
        )
    )


async def messages_of(session: AsyncSession, code: str) -> list[Message]:
    """Messages of one dossier, oldest first (``created_at``, then key)."""
    rows = await session.exec(
        select(Message)
        .where(Message.dossier_code == code)
        .order_by(col(Message.created_at), col(Message.key))
    )
    return list(rows.all())


# --- messages: the dispatcher -----------------------------------------------------------


async def settle_lapsed(
    session: AsyncSession, channel: str, lapsed_before: datetime, *, resend: bool
) -> None:
    """Settle the messages of ``channel`` left ``sending`` whose lease lapsed
    (``claimed_at`` before ``lapsed_before``): queued again under the same key if
    ``resend`` (the channel's sinks are resend-safe), else ``unknown``; the claim is
    cleared either way."""
    await session.exec(
        update(Message)
        .where(
            col(Message.status) == SENDING,
            col(Message.channel) == channel,
            col(Message.claimed_at) < lapsed_before,
        )
        .values(
            status=QUEUED if resend else UNKNOWN,
            claim=None,
            last_error="interrupted during send"
            + ("; resent under the same key" if resend else "; not resent"),
        )
    )


async def claim_due(
    session: AsyncSession, claim: str, now: datetime, channels: Collection[str], limit: int
) -> int:
    """Claim up to ``limit`` messages ``queued`` and due (``next_attempt_at <= now``) on
    ``channels``, earliest due first: ``sending`` under ``claim`` with ``claimed_at = now``;
    return how many were picked.

    The update is guarded by ``WHERE status = 'queued'``: a row another dispatcher claimed
    between the pick and the update is not taken over, so two dispatchers never both hold
    a row. Commit before reading the claimed rows (``claimed``).
    """
    due = (
        await session.exec(
            select(Message.key)
            .where(
                col(Message.status) == QUEUED,
                col(Message.next_attempt_at) <= now,
                col(Message.channel).in_(channels),
            )
            .order_by(col(Message.next_attempt_at))
            .limit(limit)
        )
    ).all()
    if not due:
        return 0
    await session.exec(
        update(Message)
        .where(col(Message.key).in_(list(due)), col(Message.status) == QUEUED)
        .values(status=SENDING, claim=claim, claimed_at=now)
    )
    return len(due)


async def claimed(session: AsyncSession, claim: str) -> list[Message]:
    """The rows held under ``claim``, in due order (``next_attempt_at``, then
    ``created_at``)."""
    rows = await session.exec(
        select(Message)
        .where(Message.claim == claim)
        .order_by(col(Message.next_attempt_at), col(Message.created_at))
    )
    return list(rows.all())


async def renew_lease(session: AsyncSession, claim: str, now: datetime) -> None:
    """Set ``claimed_at`` to ``now`` on the rows still ``sending`` under ``claim``
    (``WHERE claim = <mine> AND status = 'sending'``)."""
    await session.exec(
        update(Message)
        .where(col(Message.claim) == claim, col(Message.status) == SENDING)
        .values(claimed_at=now)
    )


async def renew_one(session: AsyncSession, key: str, claim: str, now: datetime) -> str | None:
    """Renew one row's lease right before its send (``WHERE key = ... AND claim =
    <mine>``); return its status, or ``None`` if the row is no longer under ``claim``
    (``sending``: it may be sent; anything else: a delivery report settled it first)."""
    found = (
        await session.exec(
            update(Message)
            .where(col(Message.key) == key, col(Message.claim) == claim)
            .values(claimed_at=now)
            .returning(col(Message.status))
        )
    ).first()
    return None if found is None else str(found[0])


async def html_of(session: AsyncSession, keys: Collection[str]) -> dict[str, str]:
    """The HTML alternatives of these messages that have one, by key (one query)."""
    rows = await session.exec(select(MessageHtml).where(col(MessageHtml.key).in_(list(keys))))
    return {row.key: row.html for row in rows.all()}


async def record_failure(
    session: AsyncSession,
    key: str,
    claim: str,
    *,
    attempts: int,
    status: str,
    error: str,
    next_attempt_at: datetime,
) -> bool:
    """Record a failed send: ``status`` (``queued`` for a retry at ``next_attempt_at``,
    or ``failed``) with its reason, ``attempts``, the claim cleared; ``False`` if the row
    is no longer under ``claim`` (nothing written: the claim was lost).

    A delivery report that came while the row was ``sending`` wins: a row no longer
    ``sending`` keeps its status and reason (precedence: ``Dispatcher._record``).
    """
    reported = col(Message.status) != SENDING
    return await _record(
        session,
        key,
        claim,
        attempts=attempts,
        status=case((reported, col(Message.status)), else_=status),
        last_error=case((reported, col(Message.last_error)), else_=error),
        next_attempt_at=next_attempt_at,
    )


async def record_sent(
    session: AsyncSession,
    key: str,
    claim: str,
    *,
    attempts: int,
    sent_at: datetime,
    sink: str,
    provider_id: str | None,
) -> bool:
    """Record an accepted send: ``sent`` with ``sent_at``, the sink and the provider id,
    ``attempts``, the claim cleared; ``False`` if the row is no longer under ``claim``
    (nothing written: the claim was lost).

    A delivery report that came while the row was ``sending`` wins: a row no longer
    ``sending`` keeps its status (``delivered``, ``failed``) and reason.
    """
    reported = col(Message.status) != SENDING
    return await _record(
        session,
        key,
        claim,
        attempts=attempts,
        status=case((reported, col(Message.status)), else_=SENT),
        last_error=case((reported, col(Message.last_error)), else_=null()),
        sent_at=sent_at,
        sink=sink,
        provider_id=provider_id,
    )


async def _record(session: AsyncSession, key: str, claim: str, **values: Any) -> bool:
    """One send's outcome, ``WHERE key = ... AND claim = <mine>``, clearing the claim."""
    result = await session.exec(
        update(Message)
        .where(col(Message.key) == key, col(Message.claim) == claim)
        .values(claim=None, **values)
    )
    return bool(result.rowcount)


async def release(session: AsyncSession, keys: Collection[str], claim: str) -> None:
    """Put these rows back to ``queued`` if still ``sending`` under ``claim`` (``WHERE
    claim = <mine> AND status = 'sending'``), the claim cleared: never handed to a sink."""
    await session.exec(
        update(Message)
        .where(
            col(Message.key).in_(list(keys)),
            col(Message.claim) == claim,
            col(Message.status) == SENDING,
        )
        .values(status=QUEUED, claim=None)
    )


async def take_report(
    session: AsyncSession, key: str, *, delivered: bool, reason: str | None, now: datetime
) -> bool:
    """Apply a gateway's delivery report to a message ``sending``, ``sent`` or
    ``delivered`` (it may overtake the record of its send): ``delivered`` at ``now``, or
    ``failed`` with the reason; ``False`` if there is no such message."""
    values: dict[str, object] = (
        {"status": DELIVERED, "delivered_at": now}
        if delivered
        else {"status": FAILED, "last_error": (reason or "not delivered")[:300]}
    )
    result = await session.exec(
        update(Message)
        .where(col(Message.key) == key, col(Message.status).in_([SENDING, SENT, DELIVERED]))
        .values(**values)
    )
    return bool(result.rowcount)


# --- messages: retention ----------------------------------------------------------------


async def purge_messages(session: AsyncSession, before: datetime) -> int:
    """Blank the recipient, subject and text (and delete the HTML) of messages final
    (``FINAL``) and created before ``before`` that still hold them; return how many.

    The update repeats the final-and-old condition, so a row that changed since the pick
    keeps its data. A message still queued or being sent keeps what it needs to be sent.
    """
    expired = (col(Message.status).in_(FINAL), col(Message.created_at) < before)
    keys = list(
        (
            await session.exec(
                select(Message.key).where(
                    *expired,
                    (col(Message.recipient) != PURGED) | (col(Message.body) != PURGED),
                )
            )
        ).all()
    )
    if keys:
        await session.exec(
            update(Message)
            .where(col(Message.key).in_(keys), *expired)
            .values(recipient=PURGED, subject=None, body=PURGED)
        )
        await session.exec(delete(MessageHtml).where(col(MessageHtml.key).in_(keys)))
    return len(keys)


# --- opt-outs ---------------------------------------------------------------------------


async def opted_out(session: AsyncSession, targets: Collection[str]) -> set[str]:
    """Which of these opt-out targets are recorded (one query)."""
    rows = await session.exec(select(OptOut.target).where(col(OptOut.target).in_(targets)))
    return set(rows.all())


async def add_opt_outs(session: AsyncSession, targets: Collection[str], now: datetime) -> None:
    """Record these opt-out targets (those not recorded yet)."""
    present = await opted_out(session, targets)
    session.add_all(OptOut(target=t, created_at=now) for t in targets if t not in present)


async def delete_opt_outs(session: AsyncSession, targets: Collection[str]) -> int:
    """Withdraw these opt-out targets; return how many were recorded."""
    result = await session.exec(delete(OptOut).where(col(OptOut.target).in_(targets)))
    return int(result.rowcount)


async def queued_to_citizens(session: AsyncSession) -> list[Message]:
    """Messages still ``queued`` to citizens (a ``domain.Trigger``: not an office head's
    warning or digest)."""
    rows = await session.exec(
        select(Message).where(
            Message.status == QUEUED,
            col(Message.trigger).in_([t.value for t in domain.Trigger]),
        )
    )
    return list(rows.all())


async def suppress(session: AsyncSession, keys: Collection[str]) -> None:
    """Mark these messages ``suppressed`` (the caller picked them ``queued`` in the same
    transaction)."""
    await session.exec(
        update(Message).where(col(Message.key).in_(list(keys))).values(status=SUPPRESSED)
    )


# --- trigger toggles --------------------------------------------------------------------


async def load_toggles(session: AsyncSession) -> domain.Toggles:
    """The trigger toggles table as a mapping (small: procedures × units × triggers set)."""
    rows = (await session.exec(select(TriggerToggle))).all()
    return {(r.procedure_code, r.receiving_unit, r.trigger): r.enabled for r in rows}


async def put_toggle(
    session: AsyncSession, trigger: str, enabled: bool, *, procedure: str, unit: str
) -> None:
    """Switch ``trigger`` on or off for a procedure and unit (``*``: any)."""
    row = await session.get(TriggerToggle, (procedure, unit, trigger))
    if row is None:
        row = TriggerToggle(
            procedure_code=procedure, receiving_unit=unit, trigger=trigger, enabled=enabled
        )
    row.enabled = enabled
    session.add(row)


# --- office heads -----------------------------------------------------------------------


async def office_heads(session: AsyncSession, *, unit: str | None = None) -> list[OfficeHead]:
    """Every office head (or only ``unit``'s), by unit."""
    wanted = select(OfficeHead).order_by(col(OfficeHead.unit))
    if unit is not None:
        wanted = wanted.where(OfficeHead.unit == unit)
    return list((await session.exec(wanted)).all())


async def heads_of(session: AsyncSession, units: Collection[str]) -> dict[str, OfficeHead]:
    """The heads of these units that are on file, by unit (one query)."""
    rows = await session.exec(select(OfficeHead).where(col(OfficeHead.unit).in_(units)))
    return {row.unit: row for row in rows.all()}


async def put_head(
    session: AsyncSession, unit: str, *, name: str, email: str, now: datetime
) -> None:
    """Record (or replace) the head of ``unit``."""
    row = await session.get(OfficeHead, unit)
    if row is None:
        row = OfficeHead(unit=unit, name=name, email=email, updated_at=now)
    row.name, row.email, row.updated_at = name, email, now
    session.add(row)


async def delete_head(session: AsyncSession, unit: str) -> bool:
    """Forget the head of ``unit``; ``False`` if none was recorded."""
    row = await session.get(OfficeHead, unit)
    if row is None:
        return False
    await session.delete(row)
    return True
