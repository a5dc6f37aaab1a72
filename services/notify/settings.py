"""Notify's own settings, read from the environment with the prefix ``MOTCUA_NOTIFY_``.

Kept beside the service (not in ``shared/settings.py``) because no other service reads
them. Secrets (SMTP password, SMS API key) are ``SecretStr`` and never printed.
"""

from __future__ import annotations

from datetime import time
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _names(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


class NotifySettings(BaseSettings):
    """Channels, gateway request shape, retries, quiet hours and the digest of notify."""

    model_config = SettingsConfigDict(env_prefix="MOTCUA_NOTIFY_", extra="ignore")

    sms_sinks: str = Field(
        "file",
        description="Ordered SMS sinks, comma-separated, from: http, file. "
        "A failed sink fails over to the next.",
    )
    email_sinks: str = Field(
        "file", description="Ordered e-mail sinks, comma-separated, from: smtp, file."
    )

    smtp_host: str = Field("127.0.0.1", description="SMTP server.")
    smtp_port: int = Field(25, gt=0, description="SMTP port.")
    smtp_username: str | None = Field(None, description="SMTP login, if the server wants one.")
    smtp_password: SecretStr | None = Field(None, description="SMTP password.")
    smtp_starttls: bool = Field(False, description="Upgrade the connection with STARTTLS.")
    smtp_tls: bool = Field(False, description="Connect with implicit TLS (port 465).")
    smtp_sender: str = Field("motcua@localhost", description="From: address of every e-mail.")
    smtp_timeout_seconds: float = Field(10.0, gt=0, description="SMTP timeout.")

    sms_url: str = Field(
        "http://127.0.0.1:8190/api/sms/send", description="The SMS gateway's send endpoint."
    )
    sms_api_key: SecretStr = Field(SecretStr(""), description="The gateway's API key.")
    sms_api_key_header: str = Field("X-API-Key", description="Header carrying the API key.")
    sms_brandname: str = Field("MOTCUA", description="Registered sender name (brandname).")
    sms_field_phone: str = Field("phone", description="JSON field of the phone number.")
    sms_field_message: str = Field("message", description="JSON field of the text.")
    sms_field_brandname: str = Field("brandname", description="JSON field of the brandname.")
    sms_field_reference: str = Field(
        "request_id",
        description="JSON field of our message key; the gateway de-duplicates on it.",
    )
    sms_report_token: SecretStr = Field(
        SecretStr(""),
        description="Shared secret the gateway sends in the X-Report-Token header of its "
        "delivery-report callback (never in the URL). Empty: reports are refused.",
    )
    sms_answer_code_field: str = Field("code", description="Answer field with the result code.")
    sms_answer_id_field: str = Field("message_id", description="Answer field with the gateway id.")
    sms_success_codes: str = Field("00", description="Result codes meaning accepted.")
    sms_temporary_codes: str = Field(
        "99", description="Result codes meaning try again later (others are permanent)."
    )
    sms_gateway_deduplicates: bool = Field(
        True,
        description="The gateway ignores a repeated reference id, so a send interrupted "
        "by a crash may be repeated safely.",
    )
    sms_timeout_seconds: float = Field(10.0, gt=0, description="Gateway request timeout.")
    sms_max_segments: int = Field(
        2, ge=1, le=6, description="Most GSM-7 segments per SMS (160 chars alone, 153 per part)."
    )

    quiet_start: time = Field(time(21, 0), description="SMS quiet hours start (Vietnam time).")
    quiet_end: time = Field(time(7, 0), description="SMS quiet hours end (Vietnam time).")

    max_attempts: int = Field(5, ge=1, description="Attempts before a message is failed.")
    backoff_seconds: float = Field(30.0, ge=0, description="First retry delay; doubles.")
    backoff_max_seconds: float = Field(3600.0, ge=0, description="Longest retry delay.")
    sending_lease_seconds: float = Field(
        300.0,
        gt=0,
        description="Lease of a dispatcher on the messages it is sending, renewed every third "
        "of it while its round runs; a message 'sending' whose lease was not renewed for this "
        "long was interrupted (crash) and is reconciled.",
    )
    dispatch_batch: int = Field(200, gt=0, description="Most messages claimed per round.")
    send_concurrency: int = Field(
        16,
        gt=0,
        description="Most messages of one channel (SMS, e-mail) handed to its sinks at once, "
        "so the SMTP server and the SMS gateway each see at most this many sends in flight; "
        "one recipient's messages go one after another.",
    )

    message_retention_days: float = Field(
        90.0,
        gt=0,
        description="Days after which a message that reached its end (sent, delivered, "
        "failed, unknown, superseded, suppressed) loses its recipient and text: the row and "
        "its status stay for the reports and the delivery history. A dossier's contact is "
        "deleted this long after its processing ended, and a notice that waited this long "
        "for a contact that never came.",
    )
    waiting_check_seconds: float = Field(
        30.0,
        gt=0,
        description="How often notices that came before their dossier's contact are queued "
        "if the contact has come since (the contact's own batch queues them at once; this "
        "catches one stored by another notify process at the same moment).",
    )
    retention_check_seconds: float = Field(
        3600.0, gt=0, description="How often messages past their retention are purged."
    )
    opt_out_secret: SecretStr | None = Field(
        None,
        description="Key of the HMAC-SHA256 fingerprint under which an opt-out stores a "
        "phone or e-mail (at least 32 characters; the same on every notify process). Unset: "
        "generated once in var_dir/notify-opt-out.secret (development). Changing it makes "
        "every contact opt-out recorded before inert.",
    )

    digest_period: Literal["month", "week"] = Field(
        "month", description="Period of the office heads' digest: month or (ISO) week."
    )
    digest_send_at: time = Field(
        time(7, 30),
        description="Local time (Vietnam) on the first working day after a period ends "
        "when its digest is queued.",
    )
    digest_check_seconds: float = Field(
        60.0, gt=0, description="How often the scheduler looks for a digest falling due."
    )
    digest_overdue_limit: int = Field(
        200, gt=0, description="Most overdue dossiers listed in one digest (oldest due first)."
    )

    @field_validator("opt_out_secret")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            msg = "opt_out_secret: at least 32 characters"
            raise ValueError(msg)
        return value

    @property
    def sms_sink_names(self) -> list[str]:
        """SMS sinks in failover order."""
        return _names(self.sms_sinks)

    @property
    def email_sink_names(self) -> list[str]:
        """E-mail sinks in failover order."""
        return _names(self.email_sinks)

    @property
    def success_codes(self) -> frozenset[str]:
        """Gateway result codes that mean accepted."""
        return frozenset(_names(self.sms_success_codes))

    @property
    def temporary_codes(self) -> frozenset[str]:
        """Gateway result codes that mean try again later."""
        return frozenset(_names(self.sms_temporary_codes))
