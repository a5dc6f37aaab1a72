"""Settings of every motcua process, read from the environment (prefix ``MOTCUA_``).

This is the one documented place for configuration; the README lists the variables.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

ServiceName = Literal["intake", "routing", "sla", "notify"]
SERVICES: tuple[ServiceName, ...] = ("intake", "routing", "sla", "notify")


class Settings(BaseSettings):
    """All knobs, with the embedded defaults that ``motcua up`` uses."""

    model_config = SettingsConfigDict(env_prefix="MOTCUA_", extra="ignore")

    kafka_bootstrap_servers: str = Field(
        "127.0.0.1:9092", description="Kafka bootstrap servers, comma-separated."
    )
    kafka_idempotence: bool = Field(
        False,
        description="Producer idempotence: on for Apache Kafka; the local broker rejects it.",
    )
    kafka_create_topics: bool = Field(
        True,
        description="Create topics with their partition counts at start-up (off in production, "
        "where deploy/ provisions them).",
    )
    database_url: str | None = Field(
        None,
        description="SQLAlchemy async URL shared by the services, each in its own schema "
        "(PostgreSQL). Unset: one SQLite file per service under var_dir.",
    )
    db_schema_prefix: str = Field(
        "", description="Prefix of each service's PostgreSQL schema (tests isolate runs with it)."
    )
    var_dir: Path = Field(Path("var"), description="Local state: SQLite files, keys, sinks.")
    consumer_batch_max: int = Field(500, gt=0, description="Most records a consumer takes at once.")
    consumer_batch_timeout_ms: int = Field(
        20, gt=0, description="How long a consumer waits to fill a batch when traffic is light."
    )
    relay_batch_max: int = Field(500, gt=0, description="Most outbox rows published per round.")
    relay_poll_seconds: float = Field(
        0.5, gt=0, description="Outbox poll interval when no local commit wakes the relay."
    )
    retry_attempts: int = Field(
        3, ge=1, description="Attempts before a message goes to its dead-letter topic."
    )
    retry_backoff_seconds: float = Field(
        0.2, ge=0, description="First retry delay; doubles with each attempt."
    )
    province: str = Field("default", description="Working-day calendar to use.")
    clock_start: str | None = Field(
        None,
        description="Development and tests only: run every process's clock from this instant "
        "(ISO 8601 with offset, e.g. 2026-12-02T14:30:00+07:00) at normal speed.",
    )
    clock_offset_seconds: float | None = Field(
        None,
        description="Set by the supervisor from clock_start: the one offset every process "
        "it starts applies to the real clock, so all agree.",
    )
    log_level: str = Field("INFO", description="Python logging level.")

    def database_url_for(self, service: ServiceName) -> str:
        """The database of one service: its own SQLite file, or the shared server URL."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.var_dir / f'{service}.db').resolve()}"

    def schema_for(self, service: ServiceName) -> str | None:
        """The PostgreSQL schema a service owns; ``None`` on SQLite (a file per service)."""
        if self.database_url and self.database_url.startswith("postgresql"):
            return f"{self.db_schema_prefix}{service}"
        return None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
