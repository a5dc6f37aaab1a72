"""Alembic revisions of intake's own tables; see ``shared.migrations``."""
