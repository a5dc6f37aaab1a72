"""The SLA tracker's settings become the domain's policy."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.sla.settings import SlaSettings


def test_defaults_follow_domain_md() -> None:
    policy = SlaSettings().policy()
    assert policy.due_soon_window == timedelta(hours=8)
    assert policy.apology_window == timedelta(hours=3)
    assert policy.granularity == "date"
    assert policy.max_extensions == 1


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOTCUA_SLA_DUE_SOON_HOURS", "4")
    monkeypatch.setenv("MOTCUA_SLA_GRANULARITY", "time")
    policy = SlaSettings().policy()
    assert policy.due_soon_window == timedelta(hours=4)
    assert policy.granularity == "time"
