"""The satisfaction ratings the reports count: ``report_rating``, one row per rated
dossier (``rating.given``), with the dossier's keys in every report dimension and the
Vietnam date it was rated on. No comment and nothing about the person: intake keeps those.

Invariant: one row per dossier; the first ``rating.given`` of a dossier is kept and a
repeat (redelivered or replayed) changes nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import date, datetime

from sqlalchemy import Column, ColumnElement, Date, Index, String, Table, func
from sqlmodel import Field, SQLModel, select
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.db import AwareDateTime, table, upsert_insert


class ReportRating(SQLModel, table=True):
    """One dossier's rating as the report counts it: its level (``SatisfactionLevel``)
    and the dossier's unit, field, procedure, level (cấp) and channel."""

    __tablename__ = "report_rating"
    __table_args__ = (Index("ix_report_rating_rated_on", "rated_on"),)

    code: str = Field(sa_column=Column(String(60), primary_key=True))
    satisfaction: str = Field(sa_column=Column(String(20), nullable=False))
    rated_at: datetime = Field(sa_column=Column(AwareDateTime, nullable=False))
    rated_on: date = Field(sa_column=Column(Date, nullable=False))
    unit: str = Field(default="", sa_column=Column(String(60), nullable=False))
    field: str = Field(default="", sa_column=Column(String(200), nullable=False))
    procedure: str = Field(default="", sa_column=Column(String(40), nullable=False))
    level: str = Field(default="", sa_column=Column(String(10), nullable=False))
    channel: str = Field(default="", sa_column=Column(String(10), nullable=False))


TABLES: list[Table] = [table(ReportRating)]
_RATINGS = table(ReportRating)
_DIMENSION_COLUMNS: dict[str, ColumnElement[str]] = {
    name: _RATINGS.c[name] for name in ("unit", "field", "procedure", "level", "channel")
}
_DIMENSION_COLUMNS["unit_field"] = _RATINGS.c.unit + "|" + _RATINGS.c.field  # the gauges' key

LevelCounts = dict[str, dict[str, int]]
"""Dimension key → satisfaction level → ratings."""


async def add_ratings(session: AsyncSession, rows: Iterable[Mapping[str, object]]) -> None:
    """Insert the ratings (column name to value, every column of ``ReportRating``) in the
    caller's transaction; a dossier rated already keeps its first row (``ON CONFLICT DO
    NOTHING``)."""
    values = [dict(row) for row in rows]
    if not values:
        return
    statement = upsert_insert(session, _RATINGS).values(values).on_conflict_do_nothing()
    await (await session.connection()).execute(statement)


async def level_counts(session: AsyncSession, dim: str, first: date, last: date) -> LevelCounts:
    """The ratings given on the Vietnam days ``[first, last]``, by the key of dimension
    ``dim`` (a report dimension, or ``unit_field``: ``<unit>|<field>``) and by level
    (one grouped scan of the days' rows, by the ``rated_on`` index)."""
    key = _DIMENSION_COLUMNS[dim]
    statement = (
        select(key, _RATINGS.c.satisfaction, func.count())
        .where(_RATINGS.c.rated_on >= first, _RATINGS.c.rated_on <= last)
        .group_by(key, _RATINGS.c.satisfaction)
    )
    out: LevelCounts = defaultdict(dict)
    for value, satisfaction, n in (await session.exec(statement)).all():
        out[str(value)][str(satisfaction)] = int(n)
    return dict(out)
