"""Alembic revisions of routing's own tables; see ``shared.migrations``."""
