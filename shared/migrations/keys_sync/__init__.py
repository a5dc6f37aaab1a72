"""Alembic revisions of a shared branch; see ``shared.migrations``."""
