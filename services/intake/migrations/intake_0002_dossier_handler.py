"""Who handles each dossier: ``dossier_handler`` (code, step, office), filled from
routing's ``dossier.routed``, so that an office key acts only on the dossiers routed to
its unit (``shared.auth``'s access rule).

Revision ID: intake_0002
Revises: intake_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from shared.migrations import existing

revision = "intake_0002"
down_revision: str | None = "intake_0001"
branch_labels: tuple[str, ...] | None = None
depends_on: str | None = None


def upgrade() -> None:
    if "dossier_handler" not in existing.tables():
        op.create_table(
            "dossier_handler",
            sa.Column("code", sa.String(length=40), nullable=False),
            sa.Column("step", sa.Integer(), nullable=False),
            sa.Column("office", sa.String(length=20), nullable=False),
            sa.PrimaryKeyConstraint("code", "step"),
        )


def downgrade() -> None:
    op.drop_table("dossier_handler")
