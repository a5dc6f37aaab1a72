"""Catalogue versions travel as events, so intake computes with the catalogue routing owns.

Routing writes each version to its own table and puts ``catalogue.published`` in its
outbox in the same transaction. A service that follows the catalogue topic keeps every
version it received in its own ``catalogue_copy`` table (in the transaction that records
the event in its inbox) and computes with the newest; after a restart it reads that
table back (``kept_catalogues``) instead of falling back to the seed. Until a service has
received a version it uses the shipped seed, which is routing's version 1.

Invariants:
- an event holds the whole catalogue, so applying it twice, or only the latest, gives
  the same copy;
- a version at or below one already kept is not written again, and ``use`` is only
  given the newest version of a batch.

A service that only looks procedures up by code (notify, portal) holds the version in
use in a ``CatalogueInUse``, which also keeps naming the procedures removed since.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

import orjson
from sqlalchemy import Column, Integer, Table, Text
from sqlmodel import Field, SQLModel, col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.catalogue import Catalogue, Procedure, catalogue_from, procedures_json, seed_catalogue
from shared.db import AwareDateTime, Database, table
from shared.events import CataloguePublished, Envelope, of_type
from shared.inbox import Apply


class CatalogueCopy(SQLModel, table=True):
    """A catalogue version as this service received it."""

    __tablename__ = "catalogue_copy"

    version: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    published_at: datetime = Field(sa_column=Column(AwareDateTime, nullable=False))
    procedures: str = Field(sa_column=Column(Text, nullable=False))
    """JSON list of the procedures, as the event carried them."""


TABLES: list[Table] = [table(CatalogueCopy)]
"""Add these to the tables of a service that follows the catalogue."""


def published_event(catalogue: Catalogue, *, changed_by: str, change: str) -> CataloguePublished:
    """The event announcing ``catalogue`` as it now stands."""
    return CataloguePublished(
        version=catalogue.version,
        procedures=procedures_json(catalogue),
        changed_by=changed_by,
        change=change,
    )


def catalogue_of(event: CataloguePublished) -> Catalogue:
    """The catalogue an event carries (``ValidationError`` if a procedure is malformed)."""
    return catalogue_from(event.version, event.procedures)


async def kept_catalogues(db: Database) -> list[Catalogue]:
    """Every version this service kept, oldest first (empty: none received yet)."""
    async with db.sessions() as session:
        return await kept_catalogues_in(session)


async def kept_catalogues_in(session: AsyncSession) -> list[Catalogue]:
    """``kept_catalogues`` in the caller's session (inside an inbox transaction, say)."""
    rows = (await session.exec(select(CatalogueCopy).order_by(col(CatalogueCopy.version)))).all()
    return [catalogue_from(row.version, orjson.loads(row.procedures)) for row in rows]


async def _nothing_else(_session: AsyncSession, _events: Sequence[Envelope]) -> None:
    return None


def following_catalogue(use: Callable[[Catalogue], None], apply: Apply = _nothing_else) -> Apply:
    """``apply`` that takes ``catalogue.published`` events: pass it to
    ``shared.consume.follow`` on the catalogue topic and add ``TABLES`` to the service's.

    The batch's versions newer than the newest kept are written to ``catalogue_copy``
    (one query to find the newest kept), and the batch's newest version is given to
    ``use`` (which ignores one that is not newer than what it holds) before the rest of
    the batch is applied: a sibling instance may have kept it already, this process
    still needs it in memory.
    """

    async def wrapped(session: AsyncSession, events: Sequence[Envelope]) -> None:
        published = of_type(events, CataloguePublished)
        if published:
            newest_kept = await session.scalar(select(func.max(col(CatalogueCopy.version))))
            floor = int(newest_kept) if newest_kept is not None else 0
            newest: Catalogue | None = None
            for event, envelope in published:
                catalogue = catalogue_of(event)
                if newest is None or catalogue.version > newest.version:
                    newest = catalogue
                if catalogue.version <= floor:
                    continue  # a sibling instance (or an earlier run) kept it already
                session.add(
                    CatalogueCopy(
                        version=catalogue.version,
                        published_at=envelope.occurred_at,
                        procedures=orjson.dumps(procedures_json(catalogue)).decode(),
                    )
                )
                floor = catalogue.version
            if newest is not None:
                use(newest)
        await apply(session, [e for e in events if e.type != CataloguePublished.event_type])

    return wrapped


class CatalogueInUse:
    """The catalogue a service that follows the topic looks procedures up in by code
    (notify: levels and names; portal: names, fields and fees), the seed until a version
    arrives. Give ``use`` to ``following_catalogue``.

    Invariants:
    - the version in use never goes back: ``use`` ignores a version at or below it;
    - a procedure a newer version removed is still found by its code (a dossier of it may
      still be open, and reports of past periods name it): calling the object gives the
      version in use plus the procedures removed since, under the number in use;
    - the versions kept before a restart (``catalogue_copy``) are read back once per
      process (``restore``), before the first lookup that matters.
    """

    def __init__(self, seed: Catalogue | None = None) -> None:
        self._in_use = seed or seed_catalogue()
        self._retired: dict[str, Procedure] = {}
        self._lookup = self._in_use
        self._restored = False

    def __call__(self) -> Catalogue:
        """The catalogue to look procedures up in (the version in use and the retired)."""
        return self._lookup

    @property
    def version(self) -> int:
        """The number of the version in use."""
        return self._in_use.version

    def use(self, catalogue: Catalogue) -> None:
        """Look procedures up in ``catalogue`` from now on, if it is newer than the one in
        use (an older or equal version is ignored)."""
        if catalogue.version <= self._in_use.version:
            return
        previous, self._in_use = self._in_use, catalogue
        self._retire(previous)
        self._refresh()

    async def restore(self, session: AsyncSession) -> None:
        """Use the versions kept before a restart (once per process; the newest wins) and
        remember the procedures they had that the version in use has not."""
        if self._restored:
            return
        kept = await kept_catalogues_in(session)
        for catalogue in kept:
            self.use(catalogue)
        for catalogue in kept:
            self._retire(catalogue)
        self._refresh()
        self._restored = True

    def _retire(self, catalogue: Catalogue) -> None:
        """Remember ``catalogue``'s procedures that the version in use lacks (a later
        version's copy of a procedure replaces an earlier one's)."""
        self._retired.update(
            (code, procedure)
            for code, procedure in catalogue.procedures.items()
            if code not in self._in_use.procedures
        )

    def _refresh(self) -> None:
        for code in self._in_use.procedures:
            self._retired.pop(code, None)
        self._lookup = Catalogue(
            version=self._in_use.version,
            procedures={**self._retired, **self._in_use.procedures},
        )
