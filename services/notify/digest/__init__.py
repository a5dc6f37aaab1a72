"""The office heads' digest: last period's figures and the dossiers now overdue, by e-mail.

``domain`` (pure: periods, when a digest is due, its key and figures), ``service`` (heads,
queueing, the scheduler), ``api`` (HTTP).
"""

from services.notify.digest.service import Digests

__all__ = ["Digests"]
