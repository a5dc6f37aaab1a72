"""Pure rules of intake: dossier codes, statuses, validation of what a counter sends."""

from __future__ import annotations

import re
from datetime import date, datetime
from enum import StrEnum

from shared.calendar import VN_TZ
from shared.catalogue import Catalogue
from shared.events import Channel

# Vietnamese mobile numbers: 0 or +84 then a carrier prefix 3, 5, 7, 8 or 9 and 8 digits.
MOBILE_PATTERN = r"^(?:\+84|0)(?:3|5|7|8|9)\d{8}$"
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
ID_NUMBER_PATTERN = r"^(?:\d{9}|\d{12})$"  # old 9-digit CMND or 12-digit CCCD

_CODE_RE = re.compile(r"^(?P<unit>\d{3}\.\d{2}\.\d{2}\.[A-Z]\d{2})-(?P<day>\d{6})-(?P<seq>\d{4,})$")


class DossierStatus(StrEnum):
    """Our states of a dossier; ``national_code`` maps them onto the national portal's."""

    SUBMITTED = "submitted"  # mới đăng ký (online, not yet accepted)
    RECEIVED = "received"  # được tiếp nhận

    @property
    def national_code(self) -> int:
        """The status code of the national public-service portal (1–10)."""
        return _NATIONAL[self]


_NATIONAL = {DossierStatus.SUBMITTED: 1, DossierStatus.RECEIVED: 2}


def reception_day(at: datetime) -> date:
    """The reception date in Vietnam time (the date in the dossier code)."""
    if at.tzinfo is None:
        msg = "reception time must be timezone-aware"
        raise ValueError(msg)
    return at.astimezone(VN_TZ).date()


def dossier_code(unit: str, day: date, sequence: int) -> str:
    """``<agency code>-YYMMDD-NNNN`` (mã hồ sơ); the sequence restarts each day per unit.

    Four digits as the rule says; a unit receiving more than 9,999 dossiers in a day
    gets a fifth digit rather than a collision.
    """
    if sequence < 1:
        msg = f"sequence must be positive, got {sequence}"
        raise ValueError(msg)
    return f"{unit}-{day:%y%m%d}-{sequence:04d}"


def parse_dossier_code(code: str) -> tuple[str, str, int] | None:
    """Split a code into (unit, YYMMDD, sequence), or ``None`` if it is not one."""
    match = _CODE_RE.match(code)
    if match is None:
        return None
    return match["unit"], match["day"], int(match["seq"])


def initial_status(channel: Channel) -> DossierStatus:
    """Online dossiers wait for an officer's acceptance; the others are received at once."""
    return DossierStatus.SUBMITTED if channel is Channel.ONLINE else DossierStatus.RECEIVED


def catalogue_errors(catalogue: Catalogue, procedure_code: str) -> list[tuple[str, str]]:
    """Field errors (field, message) of a dossier against the catalogue."""
    if catalogue.get(procedure_code) is None:
        return [("procedure_code", f"unknown procedure {procedure_code!r}")]
    return []
