"""The citizen's satisfaction with a dossier: ``rating`` (one per dossier, keyed by its
code: level, optional comment, channel, time, the kiosk key that took it).

Revision ID: intake_0004
Revises: intake_0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from shared.migrations import existing

revision = "intake_0004"
down_revision: str | None = "intake_0003"
branch_labels: tuple[str, ...] | None = None
depends_on: str | None = None


def upgrade() -> None:
    if "rating" not in existing.tables():
        op.create_table(
            "rating",
            sa.Column("code", sa.String(length=40), nullable=False),
            sa.Column("level", sa.String(length=20), nullable=False),
            sa.Column("comment", sa.String(length=500), nullable=True),
            sa.Column("channel", sa.String(length=10), nullable=False),
            sa.Column("at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("key_id", sa.String(length=20), nullable=True),
            sa.PrimaryKeyConstraint("code"),
        )


def downgrade() -> None:
    op.drop_table("rating")
