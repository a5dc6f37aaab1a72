"""portal follows the catalogue topic: its copy of every version received,
``catalogue_copy`` (``shared/catalogue_sync.py``), read back after a restart.

The table is the one intake keeps (branch ``catalogue_sync``) and notify creates in its
own branch (``notify_0003``); the portal creates it in its own branch too, so that the
shared branch's baseline stays the schema of commit 78546e7 for the services it had.

Revision ID: portal_0002
Revises: portal_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "portal_0002"
down_revision: str | None = "portal_0001"
branch_labels: tuple[str, ...] | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "catalogue_copy",
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("procedures", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("version"),
    )


def downgrade() -> None:
    op.drop_table("catalogue_copy")
