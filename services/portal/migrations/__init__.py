"""Alembic revisions of the portal sync's own tables; see ``shared.migrations``."""
