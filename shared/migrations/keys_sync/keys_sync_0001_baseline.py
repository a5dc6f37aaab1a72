"""keys_sync baseline: the copy of intake's API keys that routing, sla and notify keep
(``shared/keys_sync.py``), exactly as commit 78546e7's ``create_all`` made it.

A table already there was made by that ``create_all`` (a database from before
migrations) and is kept as it is; only missing tables are created. See ``shared.migrations``.

Revision ID: keys_sync_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from shared.migrations import existing

revision = "keys_sync_0001"
down_revision: str | None = None
branch_labels = ("keys_sync",)
depends_on: str | None = None


def upgrade() -> None:
    present = existing.tables()
    if "api_key_copy" not in present:
        op.create_table(
            "api_key_copy",
            sa.Column("key_id", sa.String(length=20), nullable=False),
            sa.Column("secret_hash", sa.String(length=64), nullable=False),
            sa.Column("role", sa.String(length=20), nullable=False),
            sa.Column("unit", sa.String(length=20), nullable=False),
            sa.Column("revoked", sa.Boolean(), nullable=False),
            sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("key_id"),
        )


def downgrade() -> None:
    op.drop_table("api_key_copy")
