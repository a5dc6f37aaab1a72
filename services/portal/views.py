"""Response models of the portal sync's API, built from the operator's view."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from services.portal.app import DossierSync, SyncStatus


class UnitSyncOut(BaseModel):
    """One receiving unit's dossiers at the portal (đồng bộ Cổng DVCQG)."""

    unit: str | None
    synced: int
    pending: int
    failed: int
    oldest_pending: datetime | None


class SyncStatusOut(BaseModel):
    """Where the sync stands: dossiers fully synced, with a state pending, failed (4xx)."""

    configured: bool = Field(description="False: MOTCUA_PORTAL_URL unset, nothing is sent.")
    synced: int
    pending: int
    failed: int
    oldest_pending: datetime | None = Field(description="The oldest unacknowledged state.")
    units: list[UnitSyncOut]


class StateOut(BaseModel):
    """One state of a dossier in the ledger."""

    step: int
    national_status: int = Field(ge=1, le=10)
    action: str | None
    at: datetime
    status: str = Field(description="pending, sent (acknowledged) or skipped.")
    sent_at: datetime | None


class DossierSyncOut(BaseModel):
    """One dossier's ledger: where its sync stands and its states."""

    code: str
    created: bool = Field(description="Whether the portal has the dossier's record.")
    acked_step: int
    acked_status: int | None
    attempts: int
    last_error: str | None
    next_attempt_at: datetime | None
    failed: bool
    synced_at: datetime | None
    waiting_for: list[str]
    states: list[StateOut]


class ResyncOut(BaseModel):
    """How many dossiers will be sent again."""

    resynced: int


def status_out(status: SyncStatus) -> SyncStatusOut:
    """The API's form of the status."""
    return SyncStatusOut(
        configured=status.configured,
        synced=status.synced,
        pending=status.pending,
        failed=status.failed,
        oldest_pending=status.oldest_pending,
        units=[
            UnitSyncOut(
                unit=u.unit,
                synced=u.synced,
                pending=u.pending,
                failed=u.failed,
                oldest_pending=u.oldest_pending,
            )
            for u in status.units
        ],
    )


def dossier_out(sync: DossierSync) -> DossierSyncOut:
    """The API's form of one dossier's ledger."""
    return DossierSyncOut(
        code=sync.code,
        created=sync.created,
        acked_step=sync.acked_step,
        acked_status=sync.acked_status,
        attempts=sync.attempts,
        last_error=sync.last_error,
        next_attempt_at=sync.next_attempt_at,
        failed=sync.failed,
        synced_at=sync.synced_at,
        waiting_for=sync.waiting_for,
        states=[
            StateOut(
                step=s.step,
                national_status=s.national_status,
                action=s.action,
                at=s.at,
                status=s.status,
                sent_at=s.sent_at,
            )
            for s in sync.states
        ],
    )
