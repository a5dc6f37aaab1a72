"""Exact chain-step hours, and the dossier's due time kept for fitting its steps.

``chain_step.working_hours`` (a ``Decimal`` as text) replaces the rounded
``working_minutes``: a step's due time is computed from the hours the catalogue gives, as
sla computes it. A row written before keeps what it held: its minutes over 60, the hours
routing used for it. ``assignment.dossier_due_at`` and ``manual_queue.dossier_due_at``
keep the due time the dossier was received with (null for rows from before: their steps
get their own hours, as routing gave them then).

Revision ID: routing_0002
Revises: routing_0001
"""

from __future__ import annotations

from decimal import Decimal

import sqlalchemy as sa
from alembic import op

from shared.migrations import existing

revision = "routing_0002"
down_revision: str | None = "routing_0001"
branch_labels: tuple[str, ...] | None = None
depends_on: str | None = None

_STEP = sa.table(
    "chain_step",
    sa.column("dossier_code", sa.String()),
    sa.column("position", sa.Integer()),
    sa.column("working_minutes", sa.Integer()),
    sa.column("working_hours", sa.String()),
)


def _fill_hours() -> None:
    """Each existing step's hours from its minutes."""
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(_STEP.c.dossier_code, _STEP.c.position, _STEP.c.working_minutes)
    ).all()
    for code, position, minutes in rows:
        bind.execute(
            _STEP.update()
            .where(_STEP.c.dossier_code == code, _STEP.c.position == position)
            .values(working_hours=str(Decimal(minutes) / 60))
        )


def upgrade() -> None:
    for name in ("assignment", "manual_queue"):
        if "dossier_due_at" not in existing.columns(name):
            with op.batch_alter_table(name) as batch:
                batch.add_column(
                    sa.Column("dossier_due_at", sa.DateTime(timezone=True), nullable=True)
                )
    if "working_hours" in existing.columns("chain_step"):
        return
    with op.batch_alter_table("chain_step") as batch:
        batch.add_column(sa.Column("working_hours", sa.String(length=40), nullable=True))
    _fill_hours()
    with op.batch_alter_table("chain_step") as batch:
        batch.alter_column("working_hours", existing_type=sa.String(length=40), nullable=False)
        batch.drop_column("working_minutes")


def downgrade() -> None:
    with op.batch_alter_table("chain_step") as batch:
        batch.add_column(sa.Column("working_minutes", sa.Integer(), nullable=True))
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(_STEP.c.dossier_code, _STEP.c.position, _STEP.c.working_hours)
    ).all()
    for code, position, hours in rows:
        bind.execute(
            _STEP.update()
            .where(_STEP.c.dossier_code == code, _STEP.c.position == position)
            .values(working_minutes=round(Decimal(hours) * 60))
        )
    with op.batch_alter_table("chain_step") as batch:
        batch.alter_column("working_minutes", existing_type=sa.Integer(), nullable=False)
        batch.drop_column("working_hours")
    for name in ("manual_queue", "assignment"):
        with op.batch_alter_table(name) as batch:
            batch.drop_column("dossier_due_at")
