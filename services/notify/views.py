"""Notify's HTTP request and response bodies (``api``)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.notify import store
from services.notify.domain import ANY, Trigger
from shared.clock import in_vietnam, in_vietnam_or_none


class MessageOut(BaseModel):
    """A message's delivery status (no recipient, no text: those are personal data).

    Messages of a dossier are the citizen's and the office head's warning about it
    (trigger ``office_warning``)."""

    key: str
    trigger: str
    channel: str
    status: str = Field(
        description="queued | sending | sent | delivered | failed | unknown | suppressed "
        "(the citizen opted out) | superseded (no longer true when its turn came: the "
        "dossier's processing ended first; never sent)"
    )
    attempts: int
    last_error: str | None
    created_at: datetime
    next_attempt_at: datetime | None = Field(description="When a queued message is tried next.")
    sent_at: datetime | None
    delivered_at: datetime | None
    sink: str | None = Field(description="Which sink accepted it (after failover).")


class DeliveryReport(BaseModel):
    """A gateway's report on one SMS, keyed by the reference id we sent (the message key)."""

    model_config = ConfigDict(extra="forbid")

    reference: str = Field(min_length=1, max_length=160)
    status: Literal["delivered", "failed"]
    reason: str | None = Field(None, max_length=300)


class OptOutIn(BaseModel):
    """Stop messages for one dossier, or for every dossier of one phone or e-mail."""

    model_config = ConfigDict(extra="forbid")

    dossier: str | None = Field(None, min_length=1, max_length=60)
    contact: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        description="Phone or e-mail; stored only as a keyed fingerprint (HMAC-SHA256).",
    )

    @model_validator(mode="after")
    def _one_target(self) -> OptOutIn:
        if not (self.dossier or self.contact):
            msg = "give a dossier or a contact"
            raise ValueError(msg)
        return self


class ToggleIn(BaseModel):
    """Switch a trigger on or off for a procedure and a receiving unit (``*``: any)."""

    model_config = ConfigDict(extra="forbid")

    trigger: Trigger
    enabled: bool
    procedure_code: str = Field(ANY, min_length=1, max_length=40)
    receiving_unit: str = Field(ANY, min_length=1, max_length=60)


def message_out(row: store.Message) -> MessageOut:
    """A stored message as ``GET /api/v1/notifications`` shows it (Vietnam times; when it
    is tried next only while it is queued)."""
    return MessageOut(
        key=row.key,
        trigger=row.trigger,
        channel=row.channel,
        status=row.status,
        attempts=row.attempts,
        last_error=row.last_error,
        created_at=in_vietnam(row.created_at),
        next_attempt_at=in_vietnam_or_none(row.next_attempt_at)
        if row.status == store.QUEUED
        else None,
        sent_at=in_vietnam_or_none(row.sent_at),
        delivered_at=in_vietnam_or_none(row.delivered_at),
        sink=row.sink,
    )
