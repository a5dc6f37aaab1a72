"""The procedure catalogue as notify knows it: the newest version routing published on the
catalogue topic, the shipped seed until the first arrives (``shared.catalogue_sync``'s
``CatalogueInUse``, which the portal uses too).

Notify looks procedures up by code only: their level when a dossier is received (the
report's ``level``), their field when routing has not said it, their name in reports and
in the office heads' e-mails. So a procedure routing added after notify started is known
as soon as its version arrives, and one removed since is still named.
"""

from __future__ import annotations

from shared.catalogue_sync import CatalogueInUse

__all__ = ["CatalogueInUse"]
