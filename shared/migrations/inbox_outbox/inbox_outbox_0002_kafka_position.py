"""Where the broker placed each published event, and the inbox by age.

``outbox.kafka_partition`` and ``outbox.kafka_offset`` (null until the broker confirms
the event), with ``ix_outbox_placed`` on (topic, kafka_partition, kafka_offset); and
``ix_inbox_applied_at`` on ``inbox.applied_at``, for deleting applied ids past retention.

Adds only what is missing: ``motcua keys`` creates intake's outbox with ``create_all``
from the live model, which already has these columns. Batch mode, so that SQLite, which
alters little, gets the same change (adding nullable columns and indexes needs no copy
of the table there either).

Revision ID: inbox_outbox_0002
Revises: inbox_outbox_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from shared.migrations import existing

revision = "inbox_outbox_0002"
down_revision: str | None = "inbox_outbox_0001"
branch_labels: tuple[str, ...] | None = None
depends_on: str | None = None


def upgrade() -> None:
    columns = existing.columns("outbox")
    with op.batch_alter_table("outbox") as batch:
        if "kafka_partition" not in columns:
            batch.add_column(sa.Column("kafka_partition", sa.Integer(), nullable=True))
        if "kafka_offset" not in columns:
            batch.add_column(sa.Column("kafka_offset", sa.BigInteger(), nullable=True))
        if "ix_outbox_placed" not in existing.indexes("outbox"):
            batch.create_index("ix_outbox_placed", ["topic", "kafka_partition", "kafka_offset"])
    if "ix_inbox_applied_at" not in existing.indexes("inbox"):
        with op.batch_alter_table("inbox") as batch:
            batch.create_index("ix_inbox_applied_at", ["applied_at"])


def downgrade() -> None:
    with op.batch_alter_table("inbox") as batch:
        batch.drop_index("ix_inbox_applied_at")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_index("ix_outbox_placed")
        batch.drop_column("kafka_offset")
        batch.drop_column("kafka_partition")
