"""Routing's wiring: its use cases on the broker (the server) or over its database alone
(the command line).

The server consumes the lifecycle topic and the sla topic (the legal clock's due times,
for the sheet), follows the calendar (step due times) and the keys intake issues (its
admin API), and publishes on the routing and catalogue topics through its outbox.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.routing import store
from services.routing.app import SERVICE, Routing
from services.routing.settings import RoutingSettings
from shared.calendar import load_calendar
from shared.calendar_sync import following_calendar
from shared.catalogue import seed_catalogue
from shared.clock import Clock, utc_now
from shared.consume import follow, subscribe
from shared.db import Database
from shared.keys_sync import TABLES as KEY_TABLES
from shared.keys_sync import following_keys
from shared.migrations import ensure_at_head
from shared.service import ServiceRuntime
from shared.settings import Settings
from shared.topics import (
    API_KEYS,
    CALENDAR,
    CATALOGUE,
    DOSSIER_LIFECYCLE,
    DOSSIER_ROUTING,
    DOSSIER_SLA,
)

__all__ = ["RoutingProcess", "build", "prepare", "standalone"]


@dataclass(frozen=True, slots=True)
class RoutingProcess:
    """Routing's runtime (broker, database, relay) and its use cases."""

    runtime: ServiceRuntime
    routing: Routing


def build(
    settings: Settings, *, clock: Clock = utc_now, routing: RoutingSettings | None = None
) -> RoutingProcess:
    """Routing's runtime, use cases and subscriber; it follows the calendar (step due
    times) and the keys intake issues (its admin API). Its use cases read "now" from
    ``clock``."""
    runtime = ServiceRuntime(
        SERVICE,
        settings,
        tables=[*store.TABLES, *KEY_TABLES],
        publishes=[DOSSIER_ROUTING, CATALOGUE],
    )
    use_cases = Routing(
        runtime.db,
        seed_catalogue(),
        load_calendar(settings.province, settings.var_dir),
        after_commit=runtime.relay.wake,
        clock=clock,
        settings=routing,
    )
    subscribe(runtime, use_cases.apply, DOSSIER_LIFECYCLE, DOSSIER_SLA)
    follow(
        runtime,
        following_keys(
            settings,
            SERVICE,
            following_calendar(settings.var_dir, settings.province, use_cases.use_calendar),
        ),
        CALENDAR,
        API_KEYS,
    )
    return RoutingProcess(runtime, use_cases)


def standalone(settings: Settings, *, clock: Clock = utc_now) -> Routing:
    """Routing's use cases over its database, without a broker (the command line).

    Events they write wait in the outbox; the routing process's relay publishes them.
    Call ``prepare`` before use.
    """
    db = Database(settings.database_url_for(SERVICE), schema=settings.schema_for(SERVICE))
    return Routing(
        db, seed_catalogue(), load_calendar(settings.province, settings.var_dir), clock=clock
    )


async def prepare(routing: Routing, settings: Settings) -> None:
    """Bring routing's database to the newest migration (or refuse one that is not, per
    the settings); load the catalogue."""
    await ensure_at_head(routing.db, SERVICE, may_upgrade=settings.db_upgrade_at_start)
    await routing.catalogues.load()
