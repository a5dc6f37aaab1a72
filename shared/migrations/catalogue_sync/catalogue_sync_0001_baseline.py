"""catalogue_sync baseline: the read copy of the procedure catalogue
(``shared/catalogue_sync.py``), exactly as commit 78546e7's ``create_all`` made it.

A table already there was made by that ``create_all`` (a database from before
migrations) and is kept as it is; only missing tables are created. See ``shared.migrations``.

Revision ID: catalogue_sync_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from shared.migrations import existing

revision = "catalogue_sync_0001"
down_revision: str | None = None
branch_labels = ("catalogue_sync",)
depends_on: str | None = None


def upgrade() -> None:
    present = existing.tables()
    if "catalogue_copy" not in present:
        op.create_table(
            "catalogue_copy",
            sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
            sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("procedures", sa.Text(), nullable=False),
            sa.PrimaryKeyConstraint("version"),
        )


def downgrade() -> None:
    op.drop_table("catalogue_copy")
