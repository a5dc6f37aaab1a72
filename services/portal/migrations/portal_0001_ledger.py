"""portal: the sync ledger (``services/portal/store.py``): a row per dossier and its
states in order.

The portal service is new since migrations began: there is no database from before them
to take over, so its tables are simply created.

Revision ID: portal_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "portal_0001"
down_revision: str | None = None
branch_labels = ("portal",)
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "portal_dossier",
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("receiving_unit", sa.String(length=20), nullable=True),
        sa.Column("office", sa.String(length=20), nullable=True),
        sa.Column("facts", sa.Text(), nullable=True),
        sa.Column("applicant", sa.Text(), nullable=True),
        sa.Column("created", sa.Boolean(), nullable=False),
        sa.Column("acked_step", sa.Integer(), nullable=False),
        sa.Column("acked_status", sa.Integer(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failed", sa.Boolean(), nullable=False),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_owner", sa.String(length=36), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("code"),
    )
    op.create_table(
        "portal_state",
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("step", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("national_status", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(length=30), nullable=True),
        sa.Column("office", sa.String(length=20), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("code", "step"),
    )
    op.create_index(
        "ix_portal_state_pending", "portal_state", ["status", "created_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_portal_state_pending", table_name="portal_state")
    op.drop_table("portal_state")
    op.drop_table("portal_dossier")
