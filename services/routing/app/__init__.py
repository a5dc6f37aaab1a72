"""Routing's use cases: routing dossiers and following their chains (``routing``,
``decisions``, ``manual``) and the catalogue it owns (``catalogue``).

The invariants are stated where they hold: routing decisions and chains in ``routing``
and ``decisions``, catalogue versions in ``catalogue``. The wiring that puts them on the
broker or the command line is ``services.routing.process``.
"""

from __future__ import annotations

from services.routing.app.catalogue import SEEDED_BY, SERVICE, Catalogues
from services.routing.app.routing import AssignError, Move, RerouteReport, Routing

__all__ = [
    "SEEDED_BY",
    "SERVICE",
    "AssignError",
    "Catalogues",
    "Move",
    "RerouteReport",
    "Routing",
]
