"""The national portal's rules: the record and progress entries, dates, status codes,
which calls a state needs, and what an answer means."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.portal import domain
from services.portal.domain import Outcome
from shared.calendar import VN_TZ
from shared.catalogue import seed_catalogue

RECEIVED = datetime(2026, 12, 2, 2, 5, 9, tzinfo=UTC)  # 09:05:09 in Vietnam
CODE = "000.00.00.H56-261202-0007"
FACTS = domain.Facts(
    code=CODE,
    procedure_code="2.000635",
    channel="counter",
    receiving_unit="000.00.00.H56",
    field="Hộ tịch",
    received_at=RECEIVED,
    due_at=RECEIVED + timedelta(days=1),
    office="000.00.13.H56",
    resolved_at=RECEIVED + timedelta(hours=30),
    returned_at=RECEIVED + timedelta(hours=32),
    supplements=(
        domain.Supplement(
            requested_step=2,
            requested_at=RECEIVED + timedelta(hours=1),
            submitted_step=3,
            submitted_at=RECEIVED + timedelta(hours=2),
        ),
    ),
)
APPLICANT = domain.Applicant(name="Lê Văn Cường", phone="0912000222")
PROCEDURE = domain.Procedure(name="Cấp bản sao trích lục hộ tịch", fee_vnd=8000)


def state(step: int, status: int, action: str | None = None) -> domain.State:
    return domain.State(step=step, national_status=status, at=RECEIVED, action=action)


def test_dates_are_vietnam_time_in_portal_form() -> None:
    assert domain.portal_time(RECEIVED) == "20261202090509"
    late = datetime(2026, 12, 31, 23, 30, tzinfo=VN_TZ)
    assert domain.portal_time(late.astimezone(UTC)) == "20261231233000"
    assert domain.portal_time(None) is None


def test_the_received_record_has_every_field_and_leaves_out_the_empty_ones() -> None:
    record = domain.record(FACTS, state(1, 2), APPLICANT, PROCEDURE)
    assert record == {
        "MaHoSo": CODE,
        "MaTTHC": "2.000635",
        "TenTTHC": "Cấp bản sao trích lục hộ tịch",
        "TenLinhVuc": "Hộ tịch",
        "KenhThucHien": "1",
        "ChuHoSo": "Lê Văn Cường",
        "LoaiDoiTuong": "1",
        "SoDienThoai": "0912000222",
        "TrichYeuHoSo": "Cấp bản sao trích lục hộ tịch",
        "NgayTiepNhan": "20261202090509",
        "NgayHenTra": "20261203090509",
        "TrangThaiHoSo": "2",
        "DonViXuLy": "000.00.13.H56",
        "HinhThuc": "0",
        "DanhSachLePhi": [
            {
                "TenPhiLePhi": "Lệ phí",
                "MaPhiLePhi": "2.000635-LP",
                "HinhThucThu": "1",
                "Gia": "8000",
                "LoaiPhiLePhi": "1",
            }
        ],
    }  # no Email, no NgayTra, no NgayKetThucXuLy, no supplements yet


def test_a_record_shows_the_supplements_made_up_to_its_state() -> None:
    asked = domain.record(FACTS, state(2, 5, "request_supplement"), APPLICANT, PROCEDURE)
    assert asked["DanhSachHoSoBoSung"] == [{"NgayBoSung": "20261202100509"}]
    back = domain.record(FACTS, state(3, 4, "submit_supplement"), APPLICANT, PROCEDURE)
    assert back["DanhSachHoSoBoSung"] == [
        {"NgayBoSung": "20261202100509", "NgayTiepNhanBoSung": "20261202110509"}
    ]


def test_end_of_processing_from_9_and_the_return_date_only_at_10() -> None:
    processing = domain.record(FACTS, state(3, 4), APPLICANT, PROCEDURE)
    resolved = domain.record(FACTS, state(4, 9, "resolve"), APPLICANT, PROCEDURE)
    returned = domain.record(FACTS, state(5, 10, "return_result"), APPLICANT, PROCEDURE)
    assert "NgayKetThucXuLy" not in processing
    assert resolved["NgayKetThucXuLy"] == "20261203150509"
    assert "NgayTra" not in resolved
    assert returned["NgayKetThucXuLy"] == "20261203150509"
    assert returned["NgayTra"] == "20261203170509"


@pytest.mark.parametrize(("channel", "code"), [("counter", "1"), ("online", "2"), ("post", "3")])
def test_channels_map_to_the_portal_codes(channel: str, code: str) -> None:
    facts = domain.Facts(CODE, "2.000635", channel, "000.00.00.H56", received_at=RECEIVED)
    assert domain.record(facts, state(1, 2), None, domain.Procedure())["KenhThucHien"] == code


def test_a_record_without_procedure_fee_or_applicant_leaves_them_out() -> None:
    facts = domain.Facts(CODE, "9.999999", "online", "000.00.00.H56", submitted_at=RECEIVED)
    record = domain.record(facts, state(0, 1), None, domain.Procedure())
    assert set(record) == {
        "MaHoSo",
        "MaTTHC",
        "KenhThucHien",
        "LoaiDoiTuong",
        "NgayTiepNhan",
        "TrangThaiHoSo",
        "DonViXuLy",
        "HinhThuc",
    }
    assert record["TrangThaiHoSo"] == "1"
    assert record["DonViXuLy"] == "000.00.00.H56"  # not routed yet: the receiving unit


def test_progress_entry_of_an_action() -> None:
    extended = domain.State(
        step=3,
        national_status=4,
        at=RECEIVED + timedelta(hours=3),
        action="extend",
        reason="Chờ xác minh",
        due_at=RECEIVED + timedelta(days=3),
    )
    assert domain.progress(FACTS, extended) == {
        "MaHoSo": CODE,
        "NguoiXuLy": "000.00.13.H56",
        "ThoiDiemXuLy": "20261202120509",
        "PhongBanXuLy": "000.00.13.H56",
        "NoiDungXuLy": "Gia hạn thời gian giải quyết: Chờ xác minh",
        "TrangThai": "4",
        "NgayBatDau": "20261202090509",
        "NgayKetThucTheoQuyDinh": "20261205090509",
    }


def test_which_calls_a_state_needs() -> None:
    assert domain.calls_for(state(1, 2), created=False, acked_status=None) == (True, False)
    supplement = state(2, 5, "request_supplement")
    assert domain.calls_for(supplement, created=True, acked_status=2) == (True, True)
    # the record went, the progress entry failed: only the progress entry again
    assert domain.calls_for(supplement, created=True, acked_status=5) == (False, True)
    assert domain.calls_for(state(6, 4, "transfer"), created=True, acked_status=4) == (False, True)


def test_steps_follow_intake_sequence() -> None:
    assert domain.SUBMITTED_STEP < domain.RECEIVED_STEP < domain.action_step(1)
    assert domain.action_step(4) == 5


@pytest.mark.parametrize(
    ("status", "body", "outcome"),
    [
        (200, {"error_code": 0}, Outcome.OK),
        (200, {"error_code": "00"}, Outcome.OK),
        (200, {"error_code": "SESSION_EXPIRED"}, Outcome.RELOGIN),
        (401, {}, Outcome.RELOGIN),
        (200, {"error_code": "-1", "message": "lỗi"}, Outcome.RETRY),
        (200, None, Outcome.RETRY),
        (503, None, Outcome.RETRY),
        (None, None, Outcome.RETRY),
        (400, {"error_code": "INVALID"}, Outcome.REJECTED),
        (404, None, Outcome.REJECTED),
    ],
)
def test_what_an_answer_means(status: int | None, body: object, outcome: Outcome) -> None:
    assert domain.outcome_of(status, body) is outcome


def test_a_failure_is_described_by_status_and_code_only() -> None:
    answer = {"error_code": "E12", "message": "ChuHoSo Lê Văn Cường không hợp lệ"}
    assert domain.describe(400, answer) == "HTTP 400, error_code E12"
    assert domain.describe(None, None) == "no answer"


@pytest.mark.parametrize(("channel", "fee"), [("counter", "20000"), ("online", "10000")])
def test_the_fee_is_the_one_of_the_dossiers_channel(channel: str, fee: str) -> None:
    """Đăng ký thường trú (1.004222): 20,000 đ at the counter, 10,000 đ online."""
    found = seed_catalogue().get("1.004222")
    procedure = domain.procedure_for(found, channel)
    facts = domain.Facts(CODE, "1.004222", channel, "000.00.00.H56", received_at=RECEIVED)
    fees = domain.record(facts, state(1, 2), None, procedure)["DanhSachLePhi"]
    assert [f["Gia"] for f in fees] == [fee]
    assert fees[0]["MaPhiLePhi"] == "1.004222-LP"


def test_a_procedure_the_catalogue_lacks_is_known_by_its_code_alone() -> None:
    assert domain.procedure_for(None, "online") == domain.Procedure()


@pytest.mark.parametrize(
    ("procedure_code", "kind"),
    [("1.001612", "2"), ("1.001266", "2"), ("2.000635", "1"), ("1.004222", "1")],
)
def test_a_household_business_procedure_is_a_business_applicant(
    procedure_code: str, kind: str
) -> None:
    found = seed_catalogue().get(procedure_code)
    assert found is not None
    procedure = domain.procedure_for(found, "counter")
    facts = domain.Facts(CODE, procedure_code, "counter", "000.00.00.H56", received_at=RECEIVED)
    assert domain.record(facts, state(1, 2), None, procedure)["LoaiDoiTuong"] == kind


def test_without_the_catalogue_the_received_field_decides_the_applicant_kind() -> None:
    business = domain.Facts(
        CODE,
        "1.999001",
        "counter",
        "000.00.00.H56",
        field="Thành lập và hoạt động của hộ kinh doanh",
    )
    assert domain.applicant_kind(domain.Procedure(), business) == domain.BUSINESS
    assert domain.applicant_kind(domain.Procedure(), FACTS) == domain.CITIZEN
