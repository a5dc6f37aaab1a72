"""SLA's wiring: the tracker on the broker (the server) or over its database alone (the
command line).

The server consumes the lifecycle and routing topics, follows the calendar (the clock)
and the keys intake issues (its API), and publishes on the sla topic through its outbox.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.sla import store
from services.sla.app import SERVICE, Tracker
from services.sla.settings import SlaSettings
from shared.calendar import WorkCalendar, load_calendar
from shared.calendar_sync import following_calendar
from shared.clock import Clock, utc_now
from shared.consume import follow, subscribe
from shared.db import Database
from shared.keys_sync import following_keys
from shared.migrations import ensure_at_head
from shared.service import ServiceRuntime
from shared.settings import Settings
from shared.topics import API_KEYS, CALENDAR, DOSSIER_LIFECYCLE, DOSSIER_ROUTING, DOSSIER_SLA


@dataclass(frozen=True, slots=True)
class SlaProcess:
    """SLA's runtime (broker, database, relay) and its use cases."""

    runtime: ServiceRuntime
    tracker: Tracker


def _tracker(
    db: Database,
    settings: Settings,
    sla: SlaSettings | None,
    clock: Clock,
    calendar: WorkCalendar | None,
    *,
    fold_memo: int = 0,
) -> Tracker:
    return Tracker(
        db,
        calendar=calendar or load_calendar(settings.province, settings.var_dir),
        sla=sla or SlaSettings(),
        clock=clock,
        fold_memo=fold_memo,
    )


def build(
    settings: Settings,
    *,
    sla: SlaSettings | None = None,
    clock: Clock = utc_now,
    calendar: WorkCalendar | None = None,
) -> SlaProcess:
    """SLA's runtime, use cases and subscriber; it follows the calendar (the clock) and the
    keys intake issues (its API). Its use cases read "now" from ``clock``."""
    runtime = ServiceRuntime(
        SERVICE, settings, tables=store.RUNTIME_TABLES, publishes=[DOSSIER_SLA]
    )
    tracker = _tracker(runtime.db, settings, sla, clock, calendar)
    subscribe(runtime, tracker.apply, DOSSIER_LIFECYCLE, DOSSIER_ROUTING)
    follow(
        runtime,
        following_keys(
            settings,
            SERVICE,
            following_calendar(settings.var_dir, settings.province, tracker.use_calendar),
        ),
        CALENDAR,
        API_KEYS,
    )
    return SlaProcess(runtime, tracker)


def standalone(settings: Settings, *, clock: Clock = utc_now, fold_memo: int = 0) -> Tracker:
    """SLA's use cases over its database, without a broker (the command line);
    ``fold_memo``: how many folds of clocks without actions it keeps (the rebuild's
    ``FOLD_MEMO_SIZE``).

    Events they write wait in the outbox; the sla process's relay publishes them. Call
    ``prepare`` before use.
    """
    db = Database(settings.database_url_for(SERVICE), schema=settings.schema_for(SERVICE))
    return _tracker(db, settings, None, clock, None, fold_memo=fold_memo)


async def prepare(tracker: Tracker, settings: Settings) -> None:
    """Bring sla's database to the newest migration (or refuse one that is not, per the
    settings)."""
    await ensure_at_head(tracker.db, SERVICE, may_upgrade=settings.db_upgrade_at_start)
