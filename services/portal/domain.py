"""The national portal's rules, pure: what a dossier's record and progress look like to
it, which answer means what, and in which order states go.

Invariants:
- a dossier's states are numbered by ``step``: 0 submitted online, 1 received, then
  ``action sequence + 1`` for each action, so the order intake recorded them is the
  order they are sent; a state at or below the last acknowledged step is never sent;
- every date travels as ``yyyyMMddHHmmss`` in Vietnam time;
- an optional field with no value (None, "", []) is left out of what is sent;
- the record of a state shows the dossier as it stood at that state: the supplement
  requests made up to it, NgayKetThucXuLy once processing ended (9, and 10 after it),
  NgayTra only when returned (10);
- the fee (DanhSachLePhi) is the one of the dossier's channel: an online dossier's is the
  catalogue's online fee when it has one (``shared.catalogue.Procedure.fee_for``);
- a dossier received under a catalogue version newer than the one in use waits for it
  (``waits_for_catalogue``): its record would lack a new procedure's name and fee;
- LoaiDoiTuong is "2" (a business) for a procedure of a business field (``BUSINESS_FIELDS``,
  the household-business procedures), "1" (a citizen) otherwise. MaDoiTuong (the
  applicant's id number) is never sent: it does not leave intake (see the README).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from shared.catalogue import Procedure as CatalogueProcedure
from shared.clock import in_vietnam
from shared.events import Channel, DossierAction

RECORD_SERVICE = "DongBoHoSoMC"
"""The call that creates (isUpdating "False") and then updates ("True") a dossier."""
PROGRESS_SERVICE = "CapNhatTienDoHoSoMC"
"""The call that reports one processing step."""

SUBMITTED_STEP = 0
RECEIVED_STEP = 1

SUBMITTED = 1  # mới đăng ký
RECEIVED = 2  # được tiếp nhận
RESOLVED = 9  # đã xử lý xong
RETURNED = 10  # đã trả kết quả

CHANNEL_CODES: dict[str, str] = {
    Channel.COUNTER.value: "1",  # trực tiếp
    Channel.ONLINE.value: "2",  # trực tuyến
    Channel.POST.value: "3",  # bưu chính công ích
}
CITIZEN = "1"  # LoaiDoiTuong: công dân
BUSINESS = "2"  # LoaiDoiTuong: doanh nghiệp, hộ kinh doanh
BUSINESS_FIELDS = frozenset({"Thành lập và hoạt động của hộ kinh doanh"})
"""The catalogue fields (lĩnh vực) whose applicant is a business, not a citizen."""
FORM_DEFAULT = "0"  # HinhThuc
FEE_NAME = "Lệ phí"
FEE_COLLECTION = "1"  # HinhThucThu: collected where the dossier is received
FEE_KIND = "1"  # LoaiPhiLePhi: a fee of the procedure

ACTION_TEXT: dict[str, str] = {
    DossierAction.REFUSE.value: "Từ chối tiếp nhận hồ sơ",
    DossierAction.REQUEST_SUPPLEMENT.value: "Yêu cầu bổ sung, hoàn thiện hồ sơ",
    DossierAction.SUBMIT_SUPPLEMENT.value: "Tiếp nhận hồ sơ bổ sung",
    DossierAction.REQUEST_PAYMENT.value: "Yêu cầu thực hiện nghĩa vụ tài chính",
    DossierAction.PAYMENT_RECEIVED.value: "Đã thực hiện nghĩa vụ tài chính",
    DossierAction.STOP.value: "Dừng xử lý hồ sơ",
    DossierAction.RESUME.value: "Tiếp tục xử lý hồ sơ",
    DossierAction.RESOLVE.value: "Đã xử lý xong hồ sơ",
    DossierAction.RETURN_RESULT.value: "Đã trả kết quả",
    DossierAction.WITHDRAW_REQUEST.value: "Công dân yêu cầu rút hồ sơ",
    DossierAction.WITHDRAW.value: "Rút hồ sơ",
    DossierAction.EXTEND.value: "Gia hạn thời gian giải quyết",
    DossierAction.TRANSFER.value: "Chuyển xử lý",
}
"""NoiDungXuLy of each action (our words; the reason, if any, follows)."""


def portal_time(value: datetime | None) -> str | None:
    """``yyyyMMddHHmmss`` in Vietnam time; ``None`` stays ``None``."""
    return None if value is None else in_vietnam(value).strftime("%Y%m%d%H%M%S")


def action_step(sequence: int) -> int:
    """The step of the action numbered ``sequence`` (1, 2, ...) by intake."""
    return sequence + RECEIVED_STEP


def compact(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` without the fields that have no value (None, "", [])."""
    return {k: v for k, v in values.items() if v is not None and v not in ("", [])}


@dataclass(frozen=True, slots=True)
class Applicant:
    """The applicant as the portal needs them (personal data: never logged)."""

    name: str
    phone: str | None = None
    email: str | None = None


@dataclass(frozen=True, slots=True)
class Supplement:
    """A supplement request (yêu cầu bổ sung) and, once back, the supplement's reception."""

    requested_step: int
    requested_at: datetime
    submitted_step: int | None = None
    submitted_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Procedure:
    """What the catalogue says of the dossier's procedure: its name, its field and the
    fee of the dossier's channel."""

    name: str | None = None
    fee_vnd: int | None = None
    field: str | None = None


def procedure_for(found: CatalogueProcedure | None, channel: str) -> Procedure:
    """The catalogue's procedure as a dossier of ``channel`` sees it (its fee is the
    online one for an online dossier); nothing known if the catalogue lacks it."""
    if found is None:
        return Procedure()
    online = channel == Channel.ONLINE.value
    return Procedure(name=found.name, fee_vnd=found.fee_for(online=online), field=found.field)


def applicant_kind(procedure: Procedure, facts: Facts) -> str:
    """LoaiDoiTuong: a business for a procedure of a business field, else a citizen (the
    catalogue's field first, the one the dossier was received under otherwise)."""
    field = procedure.field or facts.field
    return BUSINESS if field in BUSINESS_FIELDS else CITIZEN


@dataclass(frozen=True, slots=True)
class Facts:
    """What the portal's record of a dossier is made of, as the events told it."""

    code: str
    procedure_code: str
    channel: str
    receiving_unit: str
    field: str | None = None
    submitted_at: datetime | None = None
    received_at: datetime | None = None
    due_at: datetime | None = None
    office: str | None = None
    resolved_at: datetime | None = None
    returned_at: datetime | None = None
    supplements: tuple[Supplement, ...] = ()
    catalogue_version: int | None = None
    """The catalogue version intake received the dossier under (None: not received yet)."""


def waits_for_catalogue(facts: Facts, version_in_use: int) -> bool:
    """Whether the dossier must wait for a newer catalogue than the one in use (the
    catalogue topic and the lifecycle topic are read independently)."""
    return facts.catalogue_version is not None and facts.catalogue_version > version_in_use


@dataclass(frozen=True, slots=True)
class State:
    """One state of a dossier to send: the national status it reached at ``step``."""

    step: int
    national_status: int
    at: datetime
    action: str | None = None
    office: str | None = None
    reason: str | None = None
    due_at: datetime | None = None


def record(
    facts: Facts, state: State, applicant: Applicant | None, procedure: Procedure
) -> dict[str, Any]:
    """The DongBoHoSoMC record of the dossier as it stood at ``state``."""
    ended = state.national_status in (RESOLVED, RETURNED)
    supplements = [
        compact(
            {
                "NgayBoSung": portal_time(s.requested_at),
                "NgayTiepNhanBoSung": portal_time(s.submitted_at)
                if s.submitted_step is not None and s.submitted_step <= state.step
                else None,
            }
        )
        for s in facts.supplements
        if s.requested_step <= state.step
    ]
    fees = (
        [
            {
                "TenPhiLePhi": FEE_NAME,
                "MaPhiLePhi": f"{facts.procedure_code}-LP",
                "HinhThucThu": FEE_COLLECTION,
                "Gia": str(procedure.fee_vnd),
                "LoaiPhiLePhi": FEE_KIND,
            }
        ]
        if procedure.fee_vnd
        else []
    )
    return compact(
        {
            "MaHoSo": facts.code,
            "MaTTHC": facts.procedure_code,
            "TenTTHC": procedure.name,
            "TenLinhVuc": facts.field,
            "KenhThucHien": CHANNEL_CODES.get(facts.channel),
            "ChuHoSo": applicant.name if applicant else None,
            "LoaiDoiTuong": applicant_kind(procedure, facts),
            "SoDienThoai": applicant.phone if applicant else None,
            "Email": applicant.email if applicant else None,
            "TrichYeuHoSo": procedure.name,
            "NgayTiepNhan": portal_time(facts.received_at or facts.submitted_at),
            "NgayHenTra": portal_time(facts.due_at),
            "TrangThaiHoSo": str(state.national_status),
            "NgayTra": portal_time(facts.returned_at)
            if state.national_status == RETURNED
            else None,
            "NgayKetThucXuLy": portal_time(facts.resolved_at) if ended else None,
            "DonViXuLy": facts.office or facts.receiving_unit,
            "HinhThuc": FORM_DEFAULT,
            "DanhSachLePhi": fees,
            "DanhSachHoSoBoSung": supplements,
        }
    )


def progress(facts: Facts, state: State) -> dict[str, Any]:
    """The CapNhatTienDoHoSoMC entry of the action that made ``state``."""
    text = ACTION_TEXT.get(state.action or "", state.action or "")
    if state.reason:
        text = f"{text}: {state.reason}"
    unit = state.office or facts.office or facts.receiving_unit
    return compact(
        {
            "MaHoSo": facts.code,
            "NguoiXuLy": unit,
            "ChucDanh": None,
            "ThoiDiemXuLy": portal_time(state.at),
            "PhongBanXuLy": unit,
            "NoiDungXuLy": text,
            "TrangThai": str(state.national_status),
            "NgayBatDau": portal_time(facts.received_at or facts.submitted_at),
            "NgayKetThucTheoQuyDinh": portal_time(state.due_at or facts.due_at),
        }
    )


def calls_for(state: State, *, created: bool, acked_status: int | None) -> tuple[bool, bool]:
    """Which calls a state needs: (the record, the progress entry).

    The record goes when the dossier is not created yet or its national status changed;
    a progress entry goes for every action (not for the submission or the reception).
    """
    needs_record = not created or state.national_status != acked_status
    return needs_record, state.action is not None


class Outcome(StrEnum):
    """What an answer of the portal means for the call."""

    OK = "ok"  # error_code 0 or "00"
    RELOGIN = "relogin"  # HTTP 401 or error_code SESSION_EXPIRED: log in again, resend
    RETRY = "retry"  # 5xx, no answer, another error_code: try again later
    REJECTED = "rejected"  # a 4xx other than 401: the dossier goes to the failed list


SESSION_EXPIRED = "SESSION_EXPIRED"


def outcome_of(status: int | None, body: Any) -> Outcome:
    """Classify an answer (``status`` None: no answer at all)."""
    if status is None or status >= 500:
        return Outcome.RETRY
    if status == 401:
        return Outcome.RELOGIN
    if 400 <= status < 500:
        return Outcome.REJECTED
    code = body.get("error_code") if isinstance(body, dict) else None
    if code in (0, "0", "00"):
        return Outcome.OK
    if code == SESSION_EXPIRED:
        return Outcome.RELOGIN
    return Outcome.RETRY


def describe(status: int | None, body: Any) -> str:
    """A short reason for the ledger: the HTTP status and the portal's error code only
    (its message may repeat what we sent, personal data included)."""
    if status is None:
        return "no answer"
    code = body.get("error_code") if isinstance(body, dict) else None
    return f"HTTP {status}" + (f", error_code {str(code)[:40]}" if code is not None else "")
