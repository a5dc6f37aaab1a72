"""The procedure catalogue routing owns: versions in its table, each published.

Invariants: every change writes a new version row and its ``catalogue.published`` event
in one transaction; the first start writes the shipped seed as the first version and
publishes it (once, whichever instance gets there first); ``catalogue`` is the newest
version this process has seen, re-read when the stored number changed, so a change made
by the command line reaches the running process.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from services.routing import store
from shared.catalogue import Catalogue, Procedure, added, imported, removed, seed_catalogue
from shared.catalogue_sync import published_event
from shared.clock import Clock, utc_now
from shared.db import Database
from shared.outbox import enqueue
from shared.service import until_done
from shared.settings import ServiceName

SERVICE: ServiceName = "routing"
SEEDED_BY = "seed"


class Catalogues:
    """The versioned catalogue over routing's database; versions are dated by ``clock``;
    its start is tried again every ``retry_seconds`` while the database is away."""

    def __init__(
        self,
        db: Database,
        catalogue: Catalogue,
        *,
        after_commit: Callable[[], None],
        clock: Clock = utc_now,
        retry_seconds: float,
    ) -> None:
        self.db = db
        self.retry_seconds = retry_seconds
        self.catalogue = catalogue
        self.clock = clock
        self._after_commit = after_commit

    async def refresh(self, session: AsyncSession) -> None:
        """Use the newest stored version if it is not the one in memory (one small query)."""
        number = await store.latest_catalogue_number(session)
        if number is None or number == self.catalogue.version:
            return
        row = await store.latest_catalogue(session)
        if row is not None:
            self.catalogue = row.catalogue()

    async def _base(self, session: AsyncSession) -> store.CatalogueVersion:
        """The newest version row, writing the shipped seed (unpublished) if there is none."""
        row = await store.latest_catalogue(session)
        if row is not None:
            return row
        return store.write_catalogue(
            session,
            seed_catalogue(),
            changed_by=SEEDED_BY,
            change="the catalogue shipped with motcua",
            now=self.clock(),
            published=False,
        )

    async def current(self) -> Catalogue:
        """The newest catalogue version (the shipped seed before any was stored)."""
        async with self.db.sessions() as session:
            await self.refresh(session)
        return self.catalogue

    async def load(self) -> Catalogue:
        """Make sure the seed is stored as the first version; use the newest version.

        Another instance seeding at the same time wins on the primary key; this one then
        reads what it wrote.
        """
        try:
            async with self.db.transaction() as session:
                self.catalogue = (await self._base(session)).catalogue()
        except IntegrityError:
            return await self.current()
        return self.catalogue

    async def publish(self) -> bool:
        """Publish the newest version if it never was (the seed on a fresh stack).

        Returns whether an event was written to the outbox. Idempotent: the row is
        marked in the same transaction, so a second call (or instance) writes nothing.
        """
        now = self.clock()
        async with self.db.transaction() as session:
            row = await self._base(session)
            self.catalogue = row.catalogue()
            if row.published_at is not None:
                return False
            store.mark_published(session, row, now)
            self._emit(session, self.catalogue, row.changed_by, row.change, now)
        self._after_commit()
        return True

    async def job(self) -> None:
        """At start: store the seed if needed and publish the newest version if it never
        was (a background job of the process; retried while the database is away)."""

        async def start() -> None:
            await self.load()
            await self.publish()

        await until_done(start, "routing catalogue start", self.retry_seconds)

    async def add_procedure(self, procedure: Procedure, *, replace: bool, by: str) -> Catalogue:
        """A new version with ``procedure`` (replacing one of its code only if ``replace``);
        ``ProcedureError`` (nothing written) if refused."""
        verb = "replace" if replace else "add"
        return await self._change(
            lambda base: added(base, procedure, replace=replace),
            by=by,
            change=f"{verb} {procedure.code} {procedure.name}",
        )

    async def remove_procedure(self, code: str, *, by: str) -> Catalogue:
        """A new version without ``code``; ``ProcedureError`` (nothing written) if absent."""
        return await self._change(lambda base: removed(base, code), by=by, change=f"remove {code}")

    async def import_catalogue(self, raws: Sequence[dict[str, object]], *, by: str) -> Catalogue:
        """A new version holding exactly ``raws``; ``ProcedureError`` naming every bad field
        (nothing written) if any is refused."""
        return await self._change(
            lambda base: imported(base, raws), by=by, change=f"import {len(raws)} procedure(s)"
        )

    async def _change(
        self, make: Callable[[Catalogue], Catalogue], *, by: str, change: str
    ) -> Catalogue:
        """Write the version ``make`` derives from the newest one, and its event, atomically."""
        now = self.clock()
        async with self.db.transaction() as session:
            base = (await self._base(session)).catalogue()
            catalogue = make(base)
            store.write_catalogue(
                session, catalogue, changed_by=by, change=change, now=now, published=True
            )
            self._emit(session, catalogue, by, change, now)
        self.catalogue = catalogue
        self._after_commit()
        return catalogue

    @staticmethod
    def _emit(
        session: AsyncSession, catalogue: Catalogue, by: str, change: str, now: datetime
    ) -> None:
        payload = published_event(catalogue, changed_by=by, change=change)
        enqueue(session, payload, occurred_at=now, source=SERVICE, dossier_code=None)

    async def history(self) -> list[store.CatalogueVersion]:
        """Every catalogue version, newest first."""
        async with self.db.sessions() as session:
            return await store.catalogue_history(session)

    async def history_page(
        self, *, limit: int, offset: int
    ) -> tuple[list[store.CatalogueVersion], int]:
        """One page of the catalogue versions, newest first, and how many there are."""
        async with self.db.sessions() as session:
            versions = await store.catalogue_history(session, limit=limit, offset=offset)
            return versions, await store.catalogue_versions(session)
