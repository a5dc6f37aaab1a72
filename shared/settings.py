"""Settings of every motcua process, read from the environment (prefix ``MOTCUA_``).

This is the one documented place for configuration; the README lists the variables.
"""

from __future__ import annotations

import ipaddress
import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ServiceName = Literal["intake", "routing", "sla", "notify", "portal"]
SERVICES: tuple[ServiceName, ...] = ("intake", "routing", "sla", "notify", "portal")


class Settings(BaseSettings):
    """All knobs, with the embedded defaults that ``motcua up`` uses."""

    # a refused value is never echoed: it may be a password or a signing secret
    model_config = SettingsConfigDict(
        env_prefix="MOTCUA_", extra="ignore", hide_input_in_errors=True
    )

    kafka_bootstrap_servers: str = Field(
        "127.0.0.1:9092", description="Kafka bootstrap servers, comma-separated."
    )
    kafka_idempotence: bool = Field(
        False,
        description="Producer idempotence: on for Apache Kafka; the local broker rejects it.",
    )
    kafka_session_timeout_ms: int = Field(
        10_000,
        ge=1_000,
        description="Consumer group session timeout: a member silent this long is dropped. "
        "The local broker also makes a joining member wait half of it, so the local stack "
        "runs with a shorter one.",
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
    consumer_fetch_wait_ms: int = Field(
        500,
        gt=0,
        description="Longest the broker may hold a consumer's fetch while nothing new has "
        "come (aiokafka's default). Kafka answers as soon as a record comes; the local "
        "broker may hold the fetch longer: ~150 ms a hop at 500, ~3 ms at 100, but 100 "
        "costs ~13 % of a core more while the stack idles and 20-30 % of the throughput "
        "under load (bench/RESULTS.md). Lower it where the latency of a quiet stack matters "
        "more than its capacity.",
    )
    relay_batch_max: int = Field(500, gt=0, description="Most outbox rows published per round.")
    relay_poll_seconds: float = Field(
        0.5, gt=0, description="Outbox poll interval when no local commit wakes the relay."
    )
    retry_attempts: int = Field(
        3,
        ge=1,
        description="Attempts at applying a record alone before it goes to its dead-letter "
        "topic (an operational failure never counts: it is retried for as long as it lasts).",
    )
    retry_backoff_seconds: float = Field(
        0.2, ge=0, description="First retry delay; doubles with each attempt."
    )
    retry_max_backoff_seconds: float = Field(
        10.0,
        gt=0,
        description="Longest wait between two attempts of a consumer blocked by an "
        "operational failure (database, disk or broker away).",
    )
    outbox_retention_days: float = Field(
        7.0,
        gt=0,
        description="How long a published event stays in its outbox, to be published again "
        "if the broker loses it; then it is deleted.",
    )
    inbox_retention_days: float = Field(
        7.0,
        gt=0,
        description="How long a consumer remembers an applied event's id (to skip it if it "
        "comes again); at least outbox_retention_days.",
    )
    retention_sweep_seconds: float = Field(
        3600.0, gt=0, description="How often outbox and inbox rows past retention are deleted."
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
    sqlite_busy_timeout_ms: int = Field(
        30_000,
        gt=0,
        description="SQLite only: how long a write waits for another connection's lock "
        "before failing with 'database is locked'.",
    )
    db_upgrade_at_start: bool = Field(
        True,
        description="Upgrade the service's database to the newest migration when it starts "
        "(off: refuse to start unless it is there, after `motcua db upgrade`).",
    )
    trusted_proxies: str = Field(
        "127.0.0.1",
        description="Addresses and networks (comma-separated, e.g. 10.0.0.5,172.16.0.0/12) "
        "whose X-Forwarded-For a service believes: the proxy in front of it (the local "
        "gateway runs on loopback). A request from any other peer is that peer's own.",
    )
    max_body_bytes: int = Field(
        1_048_576,
        gt=0,
        description="Largest request body the gateway and every service accept (413 beyond). "
        "The largest legitimate one, a dossier with 100 documents named in full, is "
        "under 200 KiB.",
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT",
        description="How every Kafka client of the process connects: PLAINTEXT to the local "
        "broker; SASL_SSL (a user per service over TLS) in production (docker-compose.yml).",
    )
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = Field(
        "SCRAM-SHA-512", description="SASL mechanism (SASL_SSL, SASL_PLAINTEXT)."
    )
    kafka_sasl_username: str | None = Field(
        None, description="The service's Kafka user (SASL_*): its ACLs say what it may do."
    )
    kafka_sasl_password: SecretStr | None = Field(
        None, description="That user's password (SASL_*); never logged."
    )
    kafka_ssl_cafile: Path | None = Field(
        None,
        description="PEM file of the CA that signed the broker's certificate (SSL, SASL_SSL); "
        "unset: the system's CAs. The broker's name is always checked against it.",
    )
    keys_signing_secret: SecretStr | None = Field(
        None,
        description="Secret of the HMAC on every api_key.changed event (at least 32 "
        "characters); comma-separated to accept several while rotating, current first: "
        "intake signs with the first, the others accept any. Unset on a PLAINTEXT broker "
        "(development): generated once in var_dir/keys-signing.secret. Required otherwise.",
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _addresses_or_networks(cls, value: str) -> str:
        for item in (part.strip() for part in value.split(",")):
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                msg = f"trusted_proxies: {item!r} is not an IP address or network"
                raise ValueError(msg) from None
        return value

    @model_validator(mode="after")
    def _inbox_outlives_outbox(self) -> Settings:
        if self.inbox_retention_days < self.outbox_retention_days:
            msg = (
                f"inbox_retention_days ({self.inbox_retention_days:g}) must be at least "
                f"outbox_retention_days ({self.outbox_retention_days:g}): an event published "
                "again must still be known to the consumers that applied it"
            )
            raise ValueError(msg)
        return self

    @field_validator("keys_signing_secret")
    @classmethod
    def _long_secrets(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        parts = [part.strip() for part in value.get_secret_value().split(",")]
        if not all(len(part) >= 32 for part in parts):  # the message never holds a secret
            msg = (
                "keys_signing_secret: every comma-separated secret needs at least 32 "
                "characters (make one: python -c 'import secrets; print(secrets.token_hex(32))')"
            )
            raise ValueError(msg)
        return SecretStr(",".join(parts))

    @model_validator(mode="after")
    def _secured_broker_has_its_secrets(self) -> Settings:
        if self.kafka_security_protocol.startswith("SASL_") and not (
            self.kafka_sasl_username and self.kafka_sasl_password
        ):
            msg = (
                f"kafka_security_protocol {self.kafka_security_protocol} needs "
                "MOTCUA_KAFKA_SASL_USERNAME and MOTCUA_KAFKA_SASL_PASSWORD"
            )
            raise ValueError(msg)
        if self.kafka_security_protocol != "PLAINTEXT" and self.keys_signing_secret is None:
            msg = (
                "MOTCUA_KEYS_SIGNING_SECRET is not set: with a secured broker "
                f"({self.kafka_security_protocol}) the services refuse to start without the "
                "secret that signs the api_key.changed events (the same on every service; "
                "deploy/README.md says how to make one)"
            )
            raise ValueError(msg)
        return self

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


def keep_private(var_dir: Path) -> None:
    """Make ``var_dir`` private to the user running motcua, now and from now on: every
    file this process (and any child it starts) creates is mode 600, every folder 700
    (``umask 077``), and what is already under ``var_dir`` is brought to those modes.

    ``var_dir`` holds SQLite files with citizens' data, logs, the message sink's texts,
    API keys, generated secrets and calendar edits: none is for other local users.
    Call it first thing in a process entry point (``motcua ...``, the stack).
    """
    os.umask(0o077)
    var_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    var_dir.chmod(0o700)
    for folder, folders, files in os.walk(var_dir):
        for name in folders:
            (Path(folder) / name).chmod(0o700)
        for name in files:
            path = Path(folder) / name
            if not path.is_symlink():
                path.chmod(0o600)
