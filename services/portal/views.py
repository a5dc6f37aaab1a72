"""Response models of the portal sync's API, built from the operator's view."""

from __future__ import annotations

from datetime import datetime, timedelta

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


class UnitSummaryOut(BaseModel):
    """One receiving unit's sync, as the public dashboard shows it: counts and an age."""

    unit: str | None = Field(description="The receiving unit's code (None: no unit known).")
    synced: int
    pending: int
    failed: int
    oldest_pending_at: datetime | None
    oldest_pending_minutes: int | None = Field(
        description="Whole minutes since the oldest unacknowledged state (None: none)."
    )


class SyncSummaryOut(BaseModel):
    """The public summary of the sync (đồng bộ Cổng DVCQG): counts per receiving unit and
    in all, never a dossier code nor anything about a person."""

    configured: bool = Field(description="False: MOTCUA_PORTAL_URL unset, nothing is sent.")
    generated_at: datetime
    units: list[UnitSummaryOut]
    total: UnitSummaryOut = Field(description="Every unit together (``unit`` None).")


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


def summary_out(status: SyncStatus, now: datetime) -> SyncSummaryOut:
    """The public form of the status at ``now``: counts and ages only."""

    def unit_out(
        unit: str | None, synced: int, pending: int, failed: int, oldest: datetime | None
    ) -> UnitSummaryOut:
        age = None if oldest is None else max(timedelta(0), now - oldest) // timedelta(minutes=1)
        return UnitSummaryOut(
            unit=unit,
            synced=synced,
            pending=pending,
            failed=failed,
            oldest_pending_at=oldest,
            oldest_pending_minutes=age,
        )

    return SyncSummaryOut(
        configured=status.configured,
        generated_at=now,
        units=[
            unit_out(u.unit, u.synced, u.pending, u.failed, u.oldest_pending) for u in status.units
        ],
        total=unit_out(None, status.synced, status.pending, status.failed, status.oldest_pending),
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
