"""The due times of sla's clock, kept for the processing-control sheet (Mẫu 06).

``assignment.clock_due_at`` and ``chain_step.clock_due_at`` (nullable): the dossier's
and each step's due time as sla last published them (``sla.due_times``, pauses and
restarts included). Rows from before have none until sla publishes again; their sheet
shows routing's own due times meanwhile.

Revision ID: routing_0003
Revises: routing_0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from shared.migrations import existing

revision = "routing_0003"
down_revision: str | None = "routing_0002"
branch_labels: tuple[str, ...] | None = None
depends_on: str | None = None

_TABLES = ("assignment", "chain_step")


def upgrade() -> None:
    for name in _TABLES:
        if "clock_due_at" not in existing.columns(name):
            with op.batch_alter_table(name) as batch:
                batch.add_column(
                    sa.Column("clock_due_at", sa.DateTime(timezone=True), nullable=True)
                )


def downgrade() -> None:
    for name in reversed(_TABLES):
        with op.batch_alter_table(name) as batch:
            batch.drop_column("clock_due_at")
