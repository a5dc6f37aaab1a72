"""The portal sync's settings (environment prefix ``MOTCUA_PORTAL_``): where the national
portal is, who we are to it, and the sender's pace.

Every path and name of the protocol is a setting, as deployed systems differ. Without
``MOTCUA_PORTAL_URL`` the ledger fills and nothing is sent; set later, the backlog drains.
"""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class PortalSettings(BaseSettings):
    """The national portal and the sender (environment prefix ``MOTCUA_PORTAL_``)."""

    # a refused value is never echoed: it may be the portal's password
    model_config = SettingsConfigDict(
        env_prefix="MOTCUA_PORTAL_", extra="ignore", hide_input_in_errors=True
    )

    url: str | None = Field(
        None,
        description="Base URL of the national portal's API; unset: nothing is sent (the "
        "ledger still fills) and /health/ready says 'portal not configured'.",
    )
    username: str = Field("", description="The unit's account at the portal.")
    password: SecretStr = Field(SecretStr(""), description="That account's password.")
    dstcode: str = Field(
        "", description="The unit's identifier (header dstcode, and madonvi in every call)."
    )
    auth_path: str = Field("/auth", description="Path of the log-in call.")
    sync_path: str = Field("/sync", description="Path of every sync call.")
    timeout_seconds: float = Field(15.0, gt=0, description="Longest wait for one answer.")
    batch: int = Field(100, gt=0, description="Most dossiers a sender round takes.")
    idle_seconds: float = Field(
        1.0, gt=0, description="Sender poll interval when no new event wakes it."
    )
    retry_first_seconds: float = Field(
        2.0, gt=0, description="First wait after a failed call; doubles with each failure."
    )
    retry_max_seconds: float = Field(
        600.0, gt=0, description="Longest wait between two attempts for one dossier."
    )
    lease_seconds: float = Field(
        120.0,
        gt=0,
        description="How long a sender instance holds a dossier it took (another instance "
        "takes it after this if the first stopped).",
    )
    gauge_seconds: float = Field(10.0, gt=0, description="How often the ledger gauges refresh.")

    @property
    def configured(self) -> bool:
        """Whether a portal to send to is set."""
        return bool(self.url)
