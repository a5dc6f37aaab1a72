"""SLA's use cases: keep each dossier's ledger, flag deadlines once, publish the class.

Two writers touch a clock: the consumer (``tracking``: events change terms and ledger;
the fold is recomputed in the same transaction) and the scheduler (``flags``: flags
whose instant has come). Both write flags to ``sla_flag`` (unique per dossier, kind and
step) in the same transaction as the outbox row that announces them, so every warning
and every final class is published exactly once per dossier and step, however many
trackers run and however often an event is redelivered. ``queries`` holds what the API
and the gauges read. The wiring is in ``services.sla.process``.
"""

from __future__ import annotations

from services.sla.app.core import FINISHED_FLAG, SERVICE, entries_of, terms_of
from services.sla.app.flags import Flagging
from services.sla.app.queries import Queries
from services.sla.app.tracking import Tracking

__all__ = ["FINISHED_FLAG", "SERVICE", "Tracker", "entries_of", "terms_of"]


class Tracker(Tracking, Flagging, Queries):
    """SLA's use cases over its database: the consumer (``apply``), the scheduler
    (``flag_due``, ``run_scheduler``), the look-up (``get``) and the gauges."""
