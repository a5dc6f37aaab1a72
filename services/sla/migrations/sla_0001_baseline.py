"""sla baseline: sla's own tables (``services/sla/store.py``), exactly as commit
78546e7's ``create_all`` made them.

A table already there was made by that ``create_all`` (a database from before
migrations) and is kept as it is; only missing tables are created. See ``shared.migrations``.

Revision ID: sla_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from shared.migrations import existing

revision = "sla_0001"
down_revision: str | None = None
branch_labels = ("sla",)
depends_on: str | None = None


def upgrade() -> None:
    present = existing.tables()
    if "sla_flag" not in present:
        op.create_table(
            "sla_flag",
            sa.Column("code", sa.String(length=40), nullable=False),
            sa.Column("kind", sa.String(length=20), nullable=False),
            sa.Column("step", sa.Integer(), nullable=False),
            sa.Column("emitted_at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("code", "kind", "step"),
        )
    if "sla_ledger" not in present:
        op.create_table(
            "sla_ledger",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("code", sa.String(length=40), nullable=False),
            sa.Column("sequence", sa.Integer(), nullable=False),
            sa.Column("action", sa.String(length=30), nullable=False),
            sa.Column("at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("reason", sa.Text(), nullable=True),
            sa.Column("new_due_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("office", sa.String(length=20), nullable=True),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("code", "sequence", name="uq_sla_ledger_sequence"),
        )
        op.create_index("ix_sla_ledger_code", "sla_ledger", ["code"], unique=False)
    if "tracked_dossier" not in present:
        op.create_table(
            "tracked_dossier",
            sa.Column("code", sa.String(length=40), nullable=False),
            sa.Column("version", sa.Integer(), nullable=False),
            sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("slip_due_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("limit_value", sa.String(length=20), nullable=True),
            sa.Column("limit_unit", sa.String(length=20), nullable=True),
            sa.Column("supplement_rule", sa.String(length=10), nullable=True),
            sa.Column("procedure_code", sa.String(length=40), nullable=True),
            sa.Column("receiving_unit", sa.String(length=20), nullable=True),
            sa.Column("channel", sa.String(length=10), nullable=True),
            sa.Column("office", sa.String(length=20), nullable=True),
            sa.Column("steps", sa.JSON(), nullable=True),
            sa.Column("phase", sa.String(length=12), nullable=False),
            sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("due_soon_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("outcome", sa.String(length=10), nullable=True),
            sa.Column("next_deadline", sa.DateTime(timezone=True), nullable=True),
            sa.Column("tracked_at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("code"),
        )
        op.create_index(
            "ix_tracked_dossier_next_deadline", "tracked_dossier", ["next_deadline"], unique=False
        )
        op.create_index("ix_tracked_dossier_office", "tracked_dossier", ["office"], unique=False)


def downgrade() -> None:
    op.drop_table("tracked_dossier")
    op.drop_table("sla_ledger")
    op.drop_table("sla_flag")
