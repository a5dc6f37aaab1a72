"""The due time as printed on the slip (Giấy tiếp nhận hồ sơ và hẹn trả kết quả)."""

from __future__ import annotations

from datetime import datetime

from shared.calendar.duetime import to_local


def format_slip_time(moment: datetime) -> str:
    """``moment`` in Vietnam time as "HH giờ mm phút, ngày dd tháng MM năm yyyy"."""
    local = to_local(moment, "moment")
    return f"{local:%H} giờ {local:%M} phút, ngày {local:%d} tháng {local:%m} năm {local:%Y}"
