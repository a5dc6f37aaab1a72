"""The procedure catalogue as notify knows it: the newest version routing published on the
catalogue topic (``shared.catalogue_sync``), the shipped seed until the first arrives.

Notify looks procedures up by code only: their level when a dossier is received (the
report's ``level``), their field when routing has not said it, their name in reports and
in the office heads' e-mails. So a procedure routing added after notify started is known
as soon as its version arrives, and one removed since is still named.
"""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from shared.catalogue import Catalogue, Procedure, seed_catalogue
from shared.catalogue_sync import kept_catalogues_in


class CatalogueInUse:
    """The catalogue notify names procedures and tells their levels with.

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
