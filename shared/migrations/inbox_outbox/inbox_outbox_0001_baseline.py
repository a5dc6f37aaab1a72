"""inbox_outbox baseline: the inbox and the outbox every service has (``shared/inbox.py``,
``shared/outbox.py``), exactly as commit 78546e7's ``create_all`` made them.

A table already there was made by that ``create_all`` (a database from before
migrations) and is kept as it is; only missing tables are created. See ``shared.migrations``.

Revision ID: inbox_outbox_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from shared.migrations import existing

revision = "inbox_outbox_0001"
down_revision: str | None = None
branch_labels = ("inbox_outbox",)
depends_on: str | None = None


def upgrade() -> None:
    present = existing.tables()
    if "inbox" not in present:
        op.create_table(
            "inbox",
            sa.Column("event_id", sa.String(length=36), nullable=False),
            sa.Column("event_type", sa.String(length=100), nullable=False),
            sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("event_id"),
        )
    if "outbox" not in present:
        op.create_table(
            "outbox",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("topic", sa.String(length=200), nullable=False),
            sa.Column("key", sa.String(length=100), nullable=True),
            sa.Column("value", sa.LargeBinary(), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
            sa.PrimaryKeyConstraint("id"),
        )
        op.create_index("ix_outbox_unsent", "outbox", ["sent_at", "id"], unique=False)


def downgrade() -> None:
    op.drop_table("outbox")
    op.drop_table("inbox")
