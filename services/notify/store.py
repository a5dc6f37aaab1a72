"""Notify's tables: every message, stored under its key before it is sent."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, Integer, String, Table, Text
from sqlmodel import Field, SQLModel

from shared.db import AwareDateTime, table


class Message(SQLModel, table=True):
    """A message to a citizen and its delivery status. Recipient and body are personal data."""

    __tablename__ = "message"
    __table_args__ = (Index("ix_message_status", "status", "created_at"),)

    key: str = Field(sa_column=Column(String(120), primary_key=True))
    dossier_code: str = Field(sa_column=Column(String(40), nullable=False, index=True))
    trigger: str = Field(sa_column=Column(String(40), nullable=False))
    channel: str = Field(sa_column=Column(String(10), nullable=False))
    recipient: str = Field(sa_column=Column(String(200), nullable=False))
    subject: str | None = Field(default=None, sa_column=Column(String(300)))
    body: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(sa_column=Column(String(20), nullable=False))
    attempts: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    last_error: str | None = Field(default=None, sa_column=Column(String(300)))
    created_at: datetime = Field(sa_column=Column(AwareDateTime, nullable=False))
    sent_at: datetime | None = Field(default=None, sa_column=Column(AwareDateTime))


TABLES: list[Table] = [table(Message)]
