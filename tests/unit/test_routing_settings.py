"""Routing's own settings (``MOTCUA_ROUTING_*``) reach the jobs they pace."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.routing.process import build
from services.routing.settings import RoutingSettings
from shared.settings import Settings


def test_the_environment_sets_the_pace_of_routings_jobs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOTCUA_ROUTING_GAUGE_SECONDS", "0.5")
    monkeypatch.setenv("MOTCUA_ROUTING_CATALOGUE_RETRY_SECONDS", "7")
    own = RoutingSettings()
    assert (own.gauge_seconds, own.catalogue_retry_seconds) == (0.5, 7.0)


def test_build_hands_the_settings_to_the_use_cases(tmp_path: Path) -> None:
    built = build(
        Settings(var_dir=tmp_path),
        routing=RoutingSettings(gauge_seconds=1.5, catalogue_retry_seconds=9.0),
    )
    assert built.routing.catalogues.retry_seconds == 9.0
    assert built.routing.gauge_seconds == 1.5


def test_a_pace_must_be_positive() -> None:
    with pytest.raises(ValueError, match="greater than 0"):
        RoutingSettings(gauge_seconds=0)
