"""The report's monthly roll-ups, ``report_month`` (of ``report_day``) and
``report_due_month`` (of ``report_due``), filled from the counts already there so that
the report read from them equals the report read from the days (issue 14).

Revision ID: notify_0004
Revises: notify_0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from shared.migrations import existing

revision = "notify_0004"
down_revision: str | None = "notify_0003"
branch_labels: tuple[str, ...] | None = None
depends_on: str | None = None


def _month(column: str) -> str:
    """SQL for the first day of the month of the date ``column``, in this dialect."""
    if op.get_bind().dialect.name == "postgresql":
        return f"CAST(date_trunc('month', {column}) AS DATE)"
    return f"date({column}, 'start of month')"


def upgrade() -> None:
    present = existing.tables()
    if "report_month" not in present:
        op.create_table(
            "report_month",
            sa.Column("dim", sa.String(length=12), nullable=False),
            sa.Column("key", sa.String(length=260), nullable=False),
            sa.Column("month", sa.Date(), nullable=False),
            sa.Column("measure", sa.String(length=24), nullable=False),
            sa.Column("n", sa.Integer(), nullable=False),
            sa.PrimaryKeyConstraint("dim", "key", "month", "measure"),
        )
        op.create_index(
            "ix_report_month_dim_month",
            "report_month",
            ["dim", "month", "key", "measure", "n"],
            unique=False,
        )
        op.execute(
            "INSERT INTO report_month (dim, key, month, measure, n) "
            f"SELECT dim, key, {_month('day')}, measure, SUM(n) FROM report_day "
            f"GROUP BY dim, key, {_month('day')}, measure"
        )
    if "report_due_month" not in present:
        op.create_table(
            "report_due_month",
            sa.Column("dim", sa.String(length=12), nullable=False),
            sa.Column("key", sa.String(length=260), nullable=False),
            sa.Column("due_month", sa.Date(), nullable=False),
            sa.Column("closed_month", sa.Date(), nullable=False),
            sa.Column("measure", sa.String(length=24), nullable=False),
            sa.Column("n", sa.Integer(), nullable=False),
            sa.PrimaryKeyConstraint("dim", "key", "due_month", "closed_month", "measure"),
        )
        op.create_index(
            "ix_report_due_month_dim_closed",
            "report_due_month",
            ["dim", "closed_month", "due_month", "key", "measure", "n"],
            unique=False,
        )
        due, closed = _month("due_day"), _month("closed_day")
        op.execute(
            "INSERT INTO report_due_month (dim, key, due_month, closed_month, measure, n) "
            f"SELECT dim, key, {due}, {closed}, measure, SUM(n) FROM report_due "
            f"GROUP BY dim, key, {due}, {closed}, measure"
        )


def downgrade() -> None:
    op.drop_table("report_due_month")
    op.drop_table("report_month")
