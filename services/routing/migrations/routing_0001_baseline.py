"""routing baseline: routing's own tables (``services/routing/store.py``), exactly as
commit 78546e7's ``create_all`` made them.

A table already there was made by that ``create_all`` (a database from before
migrations) and is kept as it is; only missing tables are created. See ``shared.migrations``.

Revision ID: routing_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from shared.migrations import existing

revision = "routing_0001"
down_revision: str | None = None
branch_labels = ("routing",)
depends_on: str | None = None


def upgrade() -> None:
    """Create each baseline table a database made before migrations lacks. Long on
    purpose: one block per table as alembic wrote it, frozen since; split, it would
    scatter one schema across helpers that nothing else calls."""
    present = existing.tables()
    if "assignment" not in present:
        op.create_table(
            "assignment",
            sa.Column("dossier_code", sa.String(length=40), nullable=False),
            sa.Column("procedure_code", sa.String(length=40), nullable=False),
            sa.Column("office", sa.String(length=20), nullable=False),
            sa.Column("field", sa.String(length=200), nullable=False),
            sa.Column("rule", sa.String(length=300), nullable=False),
            sa.Column("explanation", sa.Text(), nullable=False),
            sa.Column("rule_version", sa.Integer(), nullable=False),
            sa.Column("catalogue_version", sa.Integer(), nullable=False),
            sa.Column("receiving_unit", sa.String(length=20), nullable=False),
            sa.Column("channel", sa.String(length=10), nullable=False),
            sa.Column("level", sa.String(length=10), nullable=True),
            sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("routed_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("current_step", sa.Integer(), nullable=False),
            sa.Column("action_sequence", sa.Integer(), nullable=False),
            sa.Column("manual", sa.Boolean(), nullable=False),
            sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
            sa.PrimaryKeyConstraint("dossier_code"),
        )
        op.create_index("ix_assignment_office", "assignment", ["office"], unique=False)
    if "catalogue_version" not in present:
        op.create_table(
            "catalogue_version",
            sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
            sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("changed_by", sa.String(length=100), nullable=False),
            sa.Column("change", sa.String(length=500), nullable=False),
            sa.Column("procedures", sa.Text(), nullable=False),
            sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
            sa.PrimaryKeyConstraint("version"),
        )
    if "chain_step" not in present:
        op.create_table(
            "chain_step",
            sa.Column("dossier_code", sa.String(length=40), nullable=False),
            sa.Column("position", sa.Integer(), autoincrement=False, nullable=False),
            sa.Column("office", sa.String(length=20), nullable=False),
            sa.Column("working_minutes", sa.Integer(), nullable=False),
            sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
            sa.PrimaryKeyConstraint("dossier_code", "position"),
        )
    if "manual_queue" not in present:
        op.create_table(
            "manual_queue",
            sa.Column("dossier_code", sa.String(length=40), nullable=False),
            sa.Column("procedure_code", sa.String(length=40), nullable=False),
            sa.Column("reason", sa.Text(), nullable=False),
            sa.Column("field", sa.String(length=200), nullable=False),
            sa.Column("receiving_unit", sa.String(length=20), nullable=False),
            sa.Column("channel", sa.String(length=10), nullable=False),
            sa.Column("level", sa.String(length=10), nullable=True),
            sa.Column("catalogue_version", sa.Integer(), nullable=False),
            sa.Column("rule_version", sa.Integer(), nullable=False),
            sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("dossier_code"),
        )
    if "rule_set_version" not in present:
        op.create_table(
            "rule_set_version",
            sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
            sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("changed_by", sa.String(length=100), nullable=False),
            sa.Column("change", sa.String(length=500), nullable=False),
            sa.Column("rules", sa.Text(), nullable=False),
            sa.PrimaryKeyConstraint("version"),
        )


def downgrade() -> None:
    op.drop_table("rule_set_version")
    op.drop_table("manual_queue")
    op.drop_table("chain_step")
    op.drop_table("catalogue_version")
    op.drop_table("assignment")
