"""SLA's settings (environment prefix ``MOTCUA_SLA_``): the warning windows, how the
class compares, and the scheduler's pace."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.sla.domain import HOUR, Policy


class SlaSettings(BaseSettings):
    """The clock's settings (environment prefix ``MOTCUA_SLA_``), defaults from DOMAIN.md."""

    model_config = SettingsConfigDict(env_prefix="MOTCUA_SLA_", extra="ignore")

    due_soon_hours: float = Field(
        8.0,
        gt=0,
        description="Longest due-soon window, working hours (at most half the dossier's limit).",
    )
    apology_hours: float = Field(
        3.0,
        gt=0,
        description=(
            "Longest apology warning for the office, working hours before the due time "
            "(at most a quarter of the dossier's limit)."
        ),
    )
    granularity: Literal["date", "time"] = Field("date", description="How the class compares.")
    max_extensions: int = Field(1, ge=0, description="Extensions (apologies) applied at most.")
    scheduler_batch: int = Field(500, gt=0, description="Clocks flagged per transaction.")
    scheduler_max_sleep_seconds: float = Field(
        30.0, gt=0, description="Longest scheduler sleep when no deadline or wake-up comes."
    )
    gauge_seconds: float = Field(15.0, gt=0, description="How often the state gauges refresh.")

    def policy(self) -> Policy:
        """The domain's policy."""
        return Policy(
            due_soon_window=self.due_soon_hours * HOUR,
            apology_window=self.apology_hours * HOUR,
            granularity=self.granularity,
            max_extensions=self.max_extensions,
        )
