"""The office heads' digest: last period's figures, the dossiers now overdue and those
needing the apology letter, by e-mail.

``domain`` (pure: periods, when a digest is due, its key and figures), ``service`` (heads,
queueing, the scheduler), ``api`` (HTTP).
"""

from services.notify.digest.service import Digests

__all__ = ["Digests"]
