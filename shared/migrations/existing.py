"""What a database already has, for revisions that must not create it twice.

A baseline creates only the tables a database made before migrations lacks; a revision
that adds to a table that some command also creates with ``create_all`` from the live
models (``motcua keys`` makes intake's outbox that way before intake first starts) adds
only what is missing. Call these inside a revision's ``upgrade``.
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import inspect


def tables() -> set[str]:
    """The tables of the database being upgraded (its default schema: the service's)."""
    return set(inspect(op.get_bind()).get_table_names())


def columns(table: str) -> set[str]:
    """The columns of ``table``."""
    return {column["name"] for column in inspect(op.get_bind()).get_columns(table)}


def indexes(table: str) -> set[str]:
    """The names of ``table``'s indexes."""
    return {str(index["name"]) for index in inspect(op.get_bind()).get_indexes(table)}
