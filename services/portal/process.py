"""The portal sync's wiring: the ledger on the broker and the sender beside it (the
server), or the operator's view over its database alone (the command line).

The server consumes the lifecycle, routing and contact topics (the record names the
applicant, so the portal reads the contacts as notify does), follows the keys intake
issues (its admin API) and the procedure catalogue routing publishes (the records' names,
fields and fees, kept in ``catalogue_copy``), and publishes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from services.portal import store
from services.portal.app import SERVICE, Ledger, Operations, Sender
from services.portal.settings import PortalSettings
from shared.catalogue_sync import TABLES as CATALOGUE_TABLES
from shared.catalogue_sync import CatalogueInUse, following_catalogue
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
    CATALOGUE,
    DOSSIER_CONTACTS,
    DOSSIER_LIFECYCLE,
    DOSSIER_ROUTING,
)

NOT_CONFIGURED = "portal not configured"


class PortalRuntime(ServiceRuntime):
    """The service host, whose readiness also says whether a portal is configured (not
    configured is still ready: the ledger fills, nothing is sent)."""

    def __init__(self, settings: Settings, portal: PortalSettings) -> None:
        tables = [*store.TABLES, *KEY_TABLES, *CATALOGUE_TABLES]
        super().__init__(SERVICE, settings, tables=tables, publishes=[])
        self.portal = portal

    async def readiness(self) -> dict[str, Any]:
        """The shared report, plus ``portal``: "configured" or "portal not configured"."""
        report = await super().readiness()
        report["portal"] = "configured" if self.portal.configured else NOT_CONFIGURED
        return report


@dataclass(frozen=True, slots=True)
class PortalProcess:
    """The portal sync's runtime and use cases."""

    runtime: PortalRuntime
    ledger: Ledger
    sender: Sender
    operations: Operations


def build(
    settings: Settings, *, portal: PortalSettings | None = None, clock: Clock = utc_now
) -> PortalProcess:
    """The runtime, the ledger's subscriber, the sender and the operator's view; the keys
    intake issues are followed for the admin API, and the catalogue for the sender (the
    seed until a version arrives). Use cases read "now" from ``clock``."""
    portal = portal or PortalSettings()
    runtime = PortalRuntime(settings, portal)
    ledger = Ledger(clock=clock)
    catalogue = CatalogueInUse()
    sender = Sender(runtime.db, portal, catalogue, clock=clock)
    subscribe(runtime, ledger.apply, DOSSIER_LIFECYCLE, DOSSIER_ROUTING, DOSSIER_CONTACTS)
    following = following_keys(settings, SERVICE, following_catalogue(catalogue.use))
    follow(runtime, following, API_KEYS, CATALOGUE)
    return PortalProcess(runtime, ledger, sender, Operations(runtime.db, portal, clock=clock))


def standalone(
    settings: Settings, *, portal: PortalSettings | None = None, clock: Clock = utc_now
) -> Operations:
    """The operator's view over the portal's database, without a broker or a sender (the
    command line). Call ``prepare`` before use."""
    db = Database(settings.database_url_for(SERVICE), schema=settings.schema_for(SERVICE))
    return Operations(db, portal or PortalSettings(), clock=clock)


async def prepare(operations: Operations, settings: Settings) -> None:
    """Bring the portal's database to the newest migration (or refuse one that is not,
    per the settings)."""
    await ensure_at_head(operations.db, SERVICE, may_upgrade=settings.db_upgrade_at_start)
