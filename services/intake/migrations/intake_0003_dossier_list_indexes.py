"""The dossier list's orders and office filter (``GET /api/v1/dossiers``): indexes on
``dossier (due_at, code)``, ``dossier (received_at, code)`` and ``dossier_handler (office)``.

Revision ID: intake_0003
Revises: intake_0002
"""

from __future__ import annotations

from alembic import op

from shared.migrations import existing

revision = "intake_0003"
down_revision: str | None = "intake_0002"
branch_labels: tuple[str, ...] | None = None
depends_on: str | None = None

_INDEXES = (
    ("ix_dossier_due_at_code", "dossier", ["due_at", "code"]),
    ("ix_dossier_received_at_code", "dossier", ["received_at", "code"]),
    ("ix_dossier_handler_office", "dossier_handler", ["office"]),
)


def upgrade() -> None:
    for name, table, columns in _INDEXES:
        if name not in existing.indexes(table):
            op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _columns in reversed(_INDEXES):
        op.drop_index(name, table_name=table)
