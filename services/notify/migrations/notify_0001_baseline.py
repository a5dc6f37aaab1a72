"""notify baseline: notify's own tables (``services/notify/store.py``,
``services/notify/reports/store.py``), exactly as commit 78546e7's ``create_all`` made them.

A table already there was made by that ``create_all`` (a database from before
migrations) and is kept as it is; only missing tables are created. See ``shared.migrations``.

Revision ID: notify_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from shared.migrations import existing

revision = "notify_0001"
down_revision: str | None = None
branch_labels = ("notify",)
depends_on: str | None = None


def upgrade() -> None:
    """Create each baseline table a database made before migrations lacks. Long on
    purpose: one block per table as alembic wrote it, frozen since; split, it would
    scatter one schema across helpers that nothing else calls."""
    present = existing.tables()
    if "addressee" not in present:
        op.create_table(
            "addressee",
            sa.Column("dossier_code", sa.String(length=60), nullable=False),
            sa.Column("name", sa.String(length=200), nullable=False),
            sa.Column("phone", sa.String(length=40), nullable=True),
            sa.Column("email", sa.String(length=200), nullable=True),
            sa.Column("procedure_code", sa.String(length=40), nullable=False),
            sa.Column("receiving_unit", sa.String(length=60), nullable=False),
            sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("dossier_code"),
        )
    if "message" not in present:
        op.create_table(
            "message",
            sa.Column("key", sa.String(length=160), nullable=False),
            sa.Column("dossier_code", sa.String(length=60), nullable=False),
            sa.Column("trigger", sa.String(length=40), nullable=False),
            sa.Column("channel", sa.String(length=10), nullable=False),
            sa.Column("recipient", sa.String(length=200), nullable=False),
            sa.Column("subject", sa.String(length=300), nullable=True),
            sa.Column("body", sa.Text(), nullable=False),
            sa.Column("status", sa.String(length=20), nullable=False),
            sa.Column("attempts", sa.Integer(), nullable=False),
            sa.Column("last_error", sa.String(length=300), nullable=True),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("claim", sa.String(length=36), nullable=True),
            sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("sink", sa.String(length=20), nullable=True),
            sa.Column("provider_id", sa.String(length=100), nullable=True),
            sa.PrimaryKeyConstraint("key"),
        )
        op.create_index("ix_message_claim", "message", ["claim"], unique=False)
        op.create_index("ix_message_dossier_code", "message", ["dossier_code"], unique=False)
        op.create_index("ix_message_due", "message", ["status", "next_attempt_at"], unique=False)
    if "message_html" not in present:
        op.create_table(
            "message_html",
            sa.Column("key", sa.String(length=160), nullable=False),
            sa.Column("html", sa.Text(), nullable=False),
            sa.PrimaryKeyConstraint("key"),
        )
    if "office_head" not in present:
        op.create_table(
            "office_head",
            sa.Column("unit", sa.String(length=60), nullable=False),
            sa.Column("name", sa.String(length=200), nullable=False),
            sa.Column("email", sa.String(length=254), nullable=False),
            sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("unit"),
        )
    if "opt_out" not in present:
        op.create_table(
            "opt_out",
            sa.Column("target", sa.String(length=100), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("target"),
        )
    if "report_day" not in present:
        op.create_table(
            "report_day",
            sa.Column("dim", sa.String(length=12), nullable=False),
            sa.Column("key", sa.String(length=260), nullable=False),
            sa.Column("day", sa.Date(), nullable=False),
            sa.Column("measure", sa.String(length=24), nullable=False),
            sa.Column("n", sa.Integer(), nullable=False),
            sa.PrimaryKeyConstraint("dim", "key", "day", "measure"),
        )
        op.create_index(
            "ix_report_day_dim_day",
            "report_day",
            ["dim", "day", "key", "measure", "n"],
            unique=False,
        )
    if "report_due" not in present:
        op.create_table(
            "report_due",
            sa.Column("dim", sa.String(length=12), nullable=False),
            sa.Column("key", sa.String(length=260), nullable=False),
            sa.Column("due_day", sa.Date(), nullable=False),
            sa.Column("closed_day", sa.Date(), nullable=False),
            sa.Column("measure", sa.String(length=24), nullable=False),
            sa.Column("n", sa.Integer(), nullable=False),
            sa.PrimaryKeyConstraint("dim", "key", "due_day", "closed_day", "measure"),
        )
        op.create_index(
            "ix_report_due_dim_closed",
            "report_due",
            ["dim", "closed_day", "due_day", "key", "measure", "n"],
            unique=False,
        )
    if "report_due_soon" not in present:
        op.create_table(
            "report_due_soon",
            sa.Column("code", sa.String(length=60), nullable=False),
            sa.Column("office", sa.String(length=60), nullable=True),
            sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("warned_at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("code"),
        )
    if "report_fact" not in present:
        op.create_table(
            "report_fact",
            sa.Column("code", sa.String(length=60), nullable=False),
            sa.Column("unit", sa.String(length=60), nullable=False),
            sa.Column("field", sa.String(length=200), nullable=False),
            sa.Column("procedure", sa.String(length=40), nullable=False),
            sa.Column("level", sa.String(length=10), nullable=False),
            sa.Column("channel", sa.String(length=10), nullable=False),
            sa.Column("received_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("outcome", sa.String(length=10), nullable=True),
            sa.Column("supplement_requests", sa.Integer(), nullable=False),
            sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True),
            sa.PrimaryKeyConstraint("code"),
        )
        op.create_index(
            "ix_report_fact_open_due",
            "report_fact",
            ["finished_at", "withdrawn_at", "due_at"],
            unique=False,
        )
    if "report_needs_apology" not in present:
        op.create_table(
            "report_needs_apology",
            sa.Column("code", sa.String(length=60), nullable=False),
            sa.Column("office", sa.String(length=60), nullable=True),
            sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("warned_at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("code"),
        )
    if "trigger_toggle" not in present:
        op.create_table(
            "trigger_toggle",
            sa.Column("procedure_code", sa.String(length=40), nullable=False),
            sa.Column("receiving_unit", sa.String(length=60), nullable=False),
            sa.Column("trigger", sa.String(length=40), nullable=False),
            sa.Column("enabled", sa.Boolean(), nullable=False),
            sa.PrimaryKeyConstraint("procedure_code", "receiving_unit", "trigger"),
        )


def downgrade() -> None:
    op.drop_table("trigger_toggle")
    op.drop_table("report_needs_apology")
    op.drop_table("report_fact")
    op.drop_table("report_due_soon")
    op.drop_table("report_due")
    op.drop_table("report_day")
    op.drop_table("opt_out")
    op.drop_table("office_head")
    op.drop_table("message_html")
    op.drop_table("message")
    op.drop_table("addressee")
