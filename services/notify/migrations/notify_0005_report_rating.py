"""The satisfaction ratings the reports count: ``report_rating`` (one row per rated
dossier, from intake's ``rating.given``: level, time and Vietnam day, and the dossier's
unit, field, procedure, level and channel), indexed by day.

Revision ID: notify_0005
Revises: notify_0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from shared.migrations import existing

revision = "notify_0005"
down_revision: str | None = "notify_0004"
branch_labels: tuple[str, ...] | None = None
depends_on: str | None = None


def upgrade() -> None:
    if "report_rating" not in existing.tables():
        op.create_table(
            "report_rating",
            sa.Column("code", sa.String(length=60), nullable=False),
            sa.Column("satisfaction", sa.String(length=20), nullable=False),
            sa.Column("rated_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("rated_on", sa.Date(), nullable=False),
            sa.Column("unit", sa.String(length=60), nullable=False),
            sa.Column("field", sa.String(length=200), nullable=False),
            sa.Column("procedure", sa.String(length=40), nullable=False),
            sa.Column("level", sa.String(length=10), nullable=False),
            sa.Column("channel", sa.String(length=10), nullable=False),
            sa.PrimaryKeyConstraint("code"),
        )
    if "ix_report_rating_rated_on" not in existing.indexes("report_rating"):
        op.create_index("ix_report_rating_rated_on", "report_rating", ["rated_on"])


def downgrade() -> None:
    op.drop_index("ix_report_rating_rated_on", table_name="report_rating")
    op.drop_table("report_rating")
