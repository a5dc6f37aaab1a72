"""intake baseline: intake's own tables (``services/intake/store.py``,
``services/intake/queue/store.py``), exactly as commit 78546e7's ``create_all`` made them.

A table already there was made by that ``create_all`` (a database from before
migrations) and is kept as it is; only missing tables are created. See ``shared.migrations``.

Revision ID: intake_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from shared.migrations import existing

revision = "intake_0001"
down_revision: str | None = None
branch_labels = ("intake",)
depends_on: str | None = None


def upgrade() -> None:
    """Create each baseline table a database made before migrations lacks. Long on
    purpose: one block per table as alembic wrote it, frozen since; split, it would
    scatter one schema across helpers that nothing else calls."""
    present = existing.tables()
    if "api_key" not in present:
        op.create_table(
            "api_key",
            sa.Column("key_id", sa.String(length=20), nullable=False),
            sa.Column("secret_hash", sa.String(length=64), nullable=False),
            sa.Column("role", sa.String(length=20), nullable=False),
            sa.Column("unit", sa.String(length=20), nullable=False),
            sa.Column("label", sa.String(length=200), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
            sa.PrimaryKeyConstraint("key_id"),
        )
    if "api_key_publication" not in present:
        op.create_table(
            "api_key_publication",
            sa.Column("key_id", sa.String(length=20), nullable=False),
            sa.Column("revoked", sa.Boolean(), nullable=False),
            sa.PrimaryKeyConstraint("key_id"),
        )
    if "dossier" not in present:
        op.create_table(
            "dossier",
            sa.Column("code", sa.String(length=40), nullable=False),
            sa.Column("procedure_code", sa.String(length=40), nullable=False),
            sa.Column("channel", sa.String(length=10), nullable=False),
            sa.Column("receiving_unit", sa.String(length=20), nullable=False),
            sa.Column("status", sa.String(length=30), nullable=False),
            sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("received_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("extended_due_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("extensions", sa.Integer(), nullable=False),
            sa.Column("action_sequence", sa.Integer(), nullable=False),
            sa.Column("last_event_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("office", sa.String(length=20), nullable=True),
            sa.Column("applicant_name", sa.String(length=200), nullable=False),
            sa.Column("applicant_phone", sa.String(length=20), nullable=True),
            sa.Column("applicant_email", sa.String(length=200), nullable=True),
            sa.Column("applicant_id_number", sa.String(length=12), nullable=True),
            sa.Column("documents", sa.JSON(), nullable=False),
            sa.PrimaryKeyConstraint("code"),
        )
        op.create_index("ix_dossier_receiving_unit", "dossier", ["receiving_unit"], unique=False)
    if "dossier_history" not in present:
        op.create_table(
            "dossier_history",
            sa.Column("code", sa.String(length=40), nullable=False),
            sa.Column("position", sa.Integer(), nullable=False),
            sa.Column("action", sa.String(length=30), nullable=False),
            sa.Column("sequence", sa.Integer(), nullable=True),
            sa.Column("at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("status", sa.String(length=30), nullable=False),
            sa.Column("reason", sa.String(length=1000), nullable=True),
            sa.Column("new_due_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("office", sa.String(length=20), nullable=True),
            sa.Column("key_id", sa.String(length=20), nullable=True),
            sa.PrimaryKeyConstraint("code", "position"),
        )
    if "dossier_sequence" not in present:
        op.create_table(
            "dossier_sequence",
            sa.Column("receiving_unit", sa.String(length=20), nullable=False),
            sa.Column("day", sa.Date(), nullable=False),
            sa.Column("last", sa.Integer(), nullable=False),
            sa.PrimaryKeyConstraint("receiving_unit", "day"),
        )
    if "idempotent_answer" not in present:
        op.create_table(
            "idempotent_answer",
            sa.Column("key_id", sa.String(length=20), nullable=False),
            sa.Column("idempotency_key", sa.String(length=200), nullable=False),
            sa.Column("request_hash", sa.String(length=64), nullable=False),
            sa.Column("status_code", sa.Integer(), nullable=False),
            sa.Column("body", sa.JSON(), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("key_id", "idempotency_key"),
        )
    if "queue_counter" not in present:
        op.create_table(
            "queue_counter",
            sa.Column("counter_id", sa.String(length=40), nullable=False),
            sa.Column("unit", sa.String(length=20), nullable=False),
            sa.Column("counter_group", sa.String(length=3), nullable=False),
            sa.Column("fields", sa.JSON(), nullable=False),
            sa.Column("procedures", sa.JSON(), nullable=False),
            sa.Column("paused_reason", sa.String(length=300), nullable=True),
            sa.Column("paused_at", sa.DateTime(timezone=True), nullable=True),
            sa.PrimaryKeyConstraint("counter_id"),
        )
        op.create_index("ix_queue_counter_unit", "queue_counter", ["unit"], unique=False)
    if "queue_ticket" not in present:
        op.create_table(
            "queue_ticket",
            sa.Column("ticket_id", sa.String(length=32), nullable=False),
            sa.Column("unit", sa.String(length=20), nullable=False),
            sa.Column("counter_group", sa.String(length=3), nullable=False),
            sa.Column("day", sa.Date(), nullable=False),
            sa.Column("sequence", sa.Integer(), nullable=False),
            sa.Column("number", sa.String(length=20), nullable=False),
            sa.Column("priority", sa.String(length=10), nullable=False),
            sa.Column("rank", sa.Integer(), nullable=False),
            sa.Column("field", sa.String(length=200), nullable=False),
            sa.Column("procedure_code", sa.String(length=40), nullable=True),
            sa.Column("state", sa.String(length=10), nullable=False),
            sa.Column("counter_id", sa.String(length=40), nullable=True),
            sa.Column("cancel_reason", sa.String(length=30), nullable=True),
            sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("called_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("served_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("dossier_code", sa.String(length=40), nullable=True),
            sa.PrimaryKeyConstraint("ticket_id"),
            sa.UniqueConstraint("dossier_code"),
        )
        op.create_index("ix_queue_ticket_counter_id", "queue_ticket", ["counter_id"], unique=False)
    if "queue_ticket_sequence" not in present:
        op.create_table(
            "queue_ticket_sequence",
            sa.Column("unit", sa.String(length=20), nullable=False),
            sa.Column("counter_group", sa.String(length=3), nullable=False),
            sa.Column("day", sa.Date(), nullable=False),
            sa.Column("last", sa.Integer(), nullable=False),
            sa.PrimaryKeyConstraint("unit", "counter_group", "day"),
        )


def downgrade() -> None:
    op.drop_table("queue_ticket_sequence")
    op.drop_table("queue_ticket")
    op.drop_table("queue_counter")
    op.drop_table("idempotent_answer")
    op.drop_table("dossier_sequence")
    op.drop_table("dossier_history")
    op.drop_table("dossier")
    op.drop_table("api_key_publication")
    op.drop_table("api_key")
