"""Contacts on a topic of their own: notices that came before their dossier's contact
wait in ``notice_waiting``; ``addressee.ended_at`` says when processing ended, so the
addressee can be deleted after the retention period.

Revision ID: notify_0002
Revises: notify_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from shared.migrations import existing

revision = "notify_0002"
down_revision: str | None = "notify_0001"
branch_labels: tuple[str, ...] | None = None
depends_on: str | None = None


def upgrade() -> None:
    if "notice_waiting" not in existing.tables():
        op.create_table(
            "notice_waiting",
            sa.Column("key", sa.String(length=160), nullable=False),
            sa.Column("dossier_code", sa.String(length=60), nullable=False),
            sa.Column("trigger", sa.String(length=40), nullable=False),
            sa.Column("occurrence", sa.String(length=20), nullable=False),
            sa.Column("facts", sa.JSON(), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("key"),
        )
        op.create_index("ix_notice_waiting_dossier", "notice_waiting", ["dossier_code"])
    if "ended_at" not in existing.columns("addressee"):
        with op.batch_alter_table("addressee") as batch:
            batch.add_column(sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("addressee") as batch:
        batch.drop_column("ended_at")
    op.drop_index("ix_notice_waiting_dossier", table_name="notice_waiting")
    op.drop_table("notice_waiting")
