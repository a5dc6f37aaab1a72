"""Alembic revisions of sla's own tables; see ``shared.migrations``."""
