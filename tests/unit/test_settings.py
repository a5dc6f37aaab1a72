"""Settings: the MOTCUA_ environment prefix and the per-service databases."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.settings import Settings


def test_environment_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOTCUA_KAFKA_BOOTSTRAP_SERVERS", "kafka:9092")
    monkeypatch.setenv("MOTCUA_KAFKA_IDEMPOTENCE", "true")
    monkeypatch.setenv("MOTCUA_RETRY_ATTEMPTS", "5")
    settings = Settings()
    assert settings.kafka_bootstrap_servers == "kafka:9092"
    assert settings.kafka_idempotence is True
    assert settings.retry_attempts == 5


def test_defaults_are_the_local_embedded_ones() -> None:
    settings = Settings()
    assert settings.kafka_idempotence is False
    assert settings.kafka_create_topics is True
    assert settings.database_url is None


def test_sqlite_file_per_service(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path)
    urls = {s: settings.database_url_for(s) for s in ("intake", "routing", "sla", "notify")}
    assert urls["intake"] == f"sqlite+aiosqlite:///{tmp_path / 'intake.db'}"
    assert len(set(urls.values())) == 4
    assert settings.schema_for("intake") is None


def test_postgresql_schema_per_service() -> None:
    settings = Settings(database_url="postgresql+asyncpg://u@h/db", db_schema_prefix="t1_")
    assert settings.database_url_for("sla") == "postgresql+asyncpg://u@h/db"
    assert settings.schema_for("sla") == "t1_sla"


def test_bad_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOTCUA_RETRY_ATTEMPTS", "0")
    with pytest.raises(ValueError, match="retry_attempts"):
        Settings()
