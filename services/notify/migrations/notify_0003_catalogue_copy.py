"""Notify follows the catalogue topic: its copy of every version received,
``catalogue_copy`` (``shared/catalogue_sync.py``), read back after a restart.

The table is the one intake keeps (branch ``catalogue_sync``); notify creates it in its
own branch, since notify's baseline (commit 78546e7) had no such table.

Revision ID: notify_0003
Revises: notify_0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from shared.migrations import existing

revision = "notify_0003"
down_revision: str | None = "notify_0002"
branch_labels: tuple[str, ...] | None = None
depends_on: str | None = None


def upgrade() -> None:
    if "catalogue_copy" not in existing.tables():
        op.create_table(
            "catalogue_copy",
            sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
            sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("procedures", sa.Text(), nullable=False),
            sa.PrimaryKeyConstraint("version"),
        )


def downgrade() -> None:
    op.drop_table("catalogue_copy")
