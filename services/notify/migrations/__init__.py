"""Alembic revisions of notify's own tables; see ``shared.migrations``."""
