"""``CatalogueInUse``: the newest version wins, an older one is ignored, a removed
procedure is still found by its code."""

from __future__ import annotations

from services.notify.catalogue import CatalogueInUse
from shared.catalogue import removed, seed_catalogue

REMOVED = "2.000635"


def test_a_newer_version_is_used_an_older_ignored_a_removed_procedure_kept() -> None:
    seed = seed_catalogue()
    two = removed(seed, REMOVED)
    in_use = CatalogueInUse()
    in_use.use(two)
    assert in_use.version == 2
    assert in_use().get(REMOVED) == seed.procedures[REMOVED]
    in_use.use(seed)
    assert in_use.version == 2
    assert set(in_use().procedures) == set(seed.procedures)
