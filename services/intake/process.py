"""Intake's process: the wiring that puts its use cases on the broker and HTTP (the
server, :func:`build`) or over its database alone (the command line, :func:`standalone`).

The invariants are stated where they hold: dossiers and their events in
:mod:`~services.intake.core` and the use cases by role, keys in
:mod:`~services.intake.keyring`, tickets in :mod:`~services.intake.queue.app`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from services.intake import store
from services.intake.app import SERVICE, Intake
from services.intake.keyring import Keyring
from services.intake.queue import store as queue_store
from services.intake.queue.app import Queue
from services.intake.ratings import Ratings
from services.intake.settings import IntakeSettings
from shared.calendar_sync import following_calendar
from shared.catalogue import seed_catalogue
from shared.catalogue_sync import TABLES as CATALOGUE_TABLES
from shared.catalogue_sync import following_catalogue
from shared.clock import Clock, utc_now
from shared.consume import follow, subscribe
from shared.db import Database
from shared.migrations import ensure_at_head
from shared.service import ServiceRuntime
from shared.settings import Settings
from shared.signing import key_signing
from shared.topics import (
    API_KEYS,
    CALENDAR,
    CATALOGUE,
    DOSSIER_CONTACTS,
    DOSSIER_LIFECYCLE,
    DOSSIER_ROUTING,
)

__all__ = ["IntakeProcess", "build", "prepare", "standalone"]


@dataclass(frozen=True, slots=True)
class IntakeProcess:
    """Intake's runtime (broker, database, relay) and its use cases: dossiers (``intake``),
    the kiosk queue (``queue``), which share the database and the catalogue in use, and
    the citizens' satisfaction ratings (``ratings``)."""

    runtime: ServiceRuntime
    intake: Intake
    queue: Queue
    ratings: Ratings


def build(
    settings: Settings, *, clock: Clock = utc_now, options: IntakeSettings | None = None
) -> IntakeProcess:
    """Intake's runtime and use cases: it publishes the lifecycle, contacts, calendar and
    keys topics, consumes the routing topic (who handles each dossier, for the access
    rule), and follows the calendar topic like every service that computes due times, and
    the catalogue topic for its read copy of the catalogue (the queue gets each newer
    version too). Its use cases read "now" from ``clock``."""
    runtime = ServiceRuntime(
        SERVICE,
        settings,
        tables=[*store.TABLES, *queue_store.TABLES, *CATALOGUE_TABLES],
        publishes=[DOSSIER_LIFECYCLE, DOSSIER_CONTACTS, CALENDAR, API_KEYS],
    )
    intake = Intake(runtime, catalogue=seed_catalogue(), clock=clock, options=options)
    queue = Queue(runtime, catalogue=intake.catalogue, clock=clock)
    intake.catalogue_users.append(queue.use_catalogue)
    subscribe(runtime, intake.apply_routing, DOSSIER_ROUTING)
    follow(
        runtime,
        following_catalogue(
            intake.use_catalogue,
            following_calendar(settings.var_dir, settings.province, intake.use_calendar),
        ),
        CALENDAR,
        CATALOGUE,
    )
    return IntakeProcess(runtime, intake, queue, Ratings(runtime, clock=clock))


def standalone(settings: Settings, *, clock: Clock = utc_now) -> Keyring:
    """Intake's command-line use cases (the API keys) over its database, without a broker.

    The key events they write wait in the outbox; the intake process's relay publishes
    them. Call :func:`prepare` before use, and dispose of ``keyring.db`` after.
    """
    db = Database(settings.database_url_for(SERVICE), schema=settings.schema_for(SERVICE))
    return Keyring(db, partial(key_signing, settings), clock=clock)


async def prepare(keyring: Keyring, settings: Settings) -> None:
    """Bring intake's database to the newest migration (or refuse one that is not, per the
    settings)."""
    await ensure_at_head(keyring.db, SERVICE, may_upgrade=settings.db_upgrade_at_start)
