"""The portal sync's use cases: the ledger the events fill (``ledger``), the sender that
empties it to the national portal (``sender``), and the operator's view (``operations``).

The invariants are stated where they hold.
"""

from __future__ import annotations

from services.portal.app.ledger import Ledger
from services.portal.app.operations import DossierSync, Operations, StateView, SyncStatus
from services.portal.app.sender import PortalClient, Reply, Sender
from shared.settings import ServiceName

SERVICE: ServiceName = "portal"

__all__ = [
    "SERVICE",
    "DossierSync",
    "Ledger",
    "Operations",
    "PortalClient",
    "Reply",
    "Sender",
    "StateView",
    "SyncStatus",
]
