"""Routing's settings (environment prefix ``MOTCUA_ROUTING_``): the pace of its background
jobs. Everything else routing reads is in the shared settings (``shared.settings``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class RoutingSettings(BaseSettings):
    """Routing's own settings (environment prefix ``MOTCUA_ROUTING_``)."""

    model_config = SettingsConfigDict(env_prefix="MOTCUA_ROUTING_", extra="ignore")

    gauge_seconds: float = Field(
        5.0, gt=0, description="How often the manual-queue gauge is read from the table."
    )
    catalogue_retry_seconds: float = Field(
        2.0,
        gt=0,
        description=(
            "Pause between tries of the catalogue's start (store the seed, publish the "
            "newest version) while the database is away."
        ),
    )
