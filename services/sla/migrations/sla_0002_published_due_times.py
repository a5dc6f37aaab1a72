"""The due times sla last published (``sla.due_times``), kept on each clock.

``tracked_dossier.due_times`` (JSON, null): a refold publishes the dossier's and its
chain steps' due times only when they differ from these. A clock from before has none:
its next refold publishes its due times once.

Revision ID: sla_0002
Revises: sla_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from shared.migrations import existing

revision = "sla_0002"
down_revision: str | None = "sla_0001"
branch_labels: tuple[str, ...] | None = None
depends_on: str | None = None


def upgrade() -> None:
    if "due_times" in existing.columns("tracked_dossier"):
        return
    with op.batch_alter_table("tracked_dossier") as batch:
        batch.add_column(sa.Column("due_times", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tracked_dossier") as batch:
        batch.drop_column("due_times")
