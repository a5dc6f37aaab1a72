"""Intake's own knobs (environment prefix ``MOTCUA_INTAKE_``), beside the shared settings."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.intake.domain import EXTENSION_MAX_DAYS


class IntakeSettings(BaseSettings):
    """Settings only intake reads."""

    model_config = SettingsConfigDict(env_prefix="MOTCUA_INTAKE_", extra="ignore")

    extension_limit: int = Field(
        1, ge=0, description="Extensions (apology with a new date, Mẫu 04) allowed per dossier."
    )
    extension_max_days: int = Field(
        EXTENSION_MAX_DAYS,
        ge=1,
        le=366,
        description="Latest new due time an extension may set: this many calendar days "
        "after the due time in force (or after the extension, for a procedure with none).",
    )
    public_base_url: str = Field(
        "http://127.0.0.1:8000",
        description="Where citizens reach the public look-up; the slip's QR code points there.",
    )
    lookup_burst: int = Field(
        10, ge=1, description="Public look-ups a client may make at once (token bucket size)."
    )
    lookup_per_minute: float = Field(
        30, gt=0, description="Public look-ups a client regains per minute (bucket refill)."
    )
    lookup_failures_per_code: int = Field(
        5,
        ge=1,
        description="Wrong phones tried on one dossier code, from any client, before that "
        "code's look-up answers 429 (to everybody, the right phone too) for a while.",
    )
    lookup_failure_window_minutes: float = Field(
        60,
        gt=0,
        description="Time in which a code regains all its lookup_failures_per_code (one "
        "every window / failures).",
    )
    idempotency_keep_hours: float = Field(
        168,
        gt=0,
        description="How long the answer to a request sent with an Idempotency-Key is kept "
        "for its retries; older answers (they hold applicants' data) are deleted hourly.",
    )
    key_cache_seconds: float = Field(
        1.0,
        ge=0,
        le=1.0,
        description="How long a verified API key is used without reading it again (0: read "
        "it on every request). A revoked key is refused within this time.",
    )
