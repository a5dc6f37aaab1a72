"""Notify's pure rules: notices from events, office warnings, keys, toggles, SMS fitting,
timing, templates."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

import pytest

from services.notify import domain
from services.notify.domain import Addressee, MessageChannel, Notice, Trigger
from services.notify.render import Renderer
from shared.calendar import VN_TZ
from shared.events import (
    Channel,
    DossierAction,
    DossierActionRecorded,
    DossierReceived,
    Envelope,
    SlaFinished,
    SlaWarning,
    TimeLimit,
)

CODE = "000.00.00.H56-260302-0001"
AT = datetime(2026, 3, 2, 10, 0, tzinfo=VN_TZ)


def wrap(payload: DossierReceived | DossierActionRecorded | SlaWarning | SlaFinished) -> Envelope:
    return Envelope.wrap(payload, occurred_at=AT, source="test", dossier_code=CODE)


def action(kind: DossierAction, sequence: int = 1, **extra: object) -> Envelope:
    return wrap(
        DossierActionRecorded(
            action=kind, sequence=sequence, at=AT, status="x", national_status=5, **extra
        )
    )


def warning(
    kind: str, step: int | None = None, office: str | None = None, hours: float = 0.0
) -> Envelope:
    return wrap(
        SlaWarning(
            kind=kind,
            step=step,
            office=office,
            due_at=AT,
            working_hours_left=hours,
            at=AT,
        )
    )


def test_received_notice_carries_the_due_time() -> None:
    received = DossierReceived(
        procedure_code="2.000635",
        channel=Channel.COUNTER,
        receiving_unit="U",
        received_at=AT,
        due_at=datetime(2026, 3, 5, 3, 0, tzinfo=UTC),
        field="Hộ tịch",
        time_limit=TimeLimit(value=Decimal(3), unit="working_days"),
        supplement_rule="pause",
        catalogue_version=1,
    )
    notice = domain.notice_of(wrap(received))
    assert notice is not None
    assert notice.trigger is Trigger.RECEIVED
    assert notice.occurrence == ""
    assert notice.facts["due_short"] == "10:00 05/03/2026"


@pytest.mark.parametrize(
    ("kind", "trigger"),
    [
        (DossierAction.REFUSE, Trigger.REFUSED),
        (DossierAction.REQUEST_SUPPLEMENT, Trigger.SUPPLEMENT_REQUESTED),
        (DossierAction.REQUEST_PAYMENT, Trigger.PAYMENT_REQUESTED),
        (DossierAction.RESOLVE, Trigger.RESULT_READY),
        (DossierAction.STOP, Trigger.STOPPED),
        (DossierAction.WITHDRAW, Trigger.STOPPED),
        (DossierAction.EXTEND, Trigger.APOLOGY),
    ],
)
def test_actions_map_to_triggers_with_their_sequence(kind: DossierAction, trigger: Trigger) -> None:
    notice = domain.notice_of(action(kind, sequence=4))
    assert notice is not None
    assert (notice.trigger, notice.occurrence) == (trigger, "4")


@pytest.mark.parametrize(
    "kind", [DossierAction.RESUME, DossierAction.TRANSFER, DossierAction.RETURN_RESULT]
)
def test_other_actions_send_nothing(kind: DossierAction) -> None:
    assert domain.notice_of(action(kind)) is None


def test_extend_carries_the_new_date() -> None:
    new_due = datetime(2026, 3, 9, 16, 30, tzinfo=VN_TZ)
    notice = domain.notice_of(action(DossierAction.EXTEND, new_due_at=new_due, reason="Lý do"))
    assert notice is not None
    assert notice.facts["new_due_short"] == "16:30 09/03/2026"
    assert "reason" not in notice.facts


FREE_TEXT = "Chuyen khoan 500.000d toi STK 0123456789 tai http://phi.example"


@pytest.mark.parametrize("kind", list(domain.ACTION_TRIGGERS))
def test_free_text_from_a_request_never_reaches_a_message(kind: DossierAction) -> None:
    notice = domain.notice_of(action(kind, reason=FREE_TEXT))
    assert notice is not None
    assert FREE_TEXT not in notice.facts.values()
    to = Addressee("B", "0987654321", "b@example.vn", "2.000635", "U")
    for draft in Renderer(sms_max_segments=6).drafts(notice, to):
        assert "STK" not in draft.body
        assert "http" not in draft.body


def test_only_the_dossier_level_overdue_tells_the_citizen() -> None:
    overdue = domain.notice_of(warning("overdue"))
    assert overdue is not None
    assert overdue.trigger is Trigger.OVERDUE
    assert overdue.facts["due_short"] == "10:00 02/03/2026"
    key = domain.message_key(CODE, overdue.trigger, MessageChannel.SMS, overdue.occurrence)
    assert key == f"{CODE}:overdue:sms"


@pytest.mark.parametrize(
    ("kind", "step"),
    [
        ("apology_needed", None),  # before the due time: the office's, not the citizen's
        ("due_soon", None),
        ("overdue", 1),
        ("apology_needed", 0),
        ("due_soon", 1),
    ],
)
def test_other_warnings_tell_the_citizen_nothing(kind: str, step: int | None) -> None:
    assert domain.notice_of(warning(kind, step)) is None


def test_apology_needed_is_an_office_warning_and_nothing_else_is() -> None:
    found = domain.office_warning_of(warning("apology_needed", office="STP", hours=2.5))
    assert found is not None
    assert found == domain.OfficeWarning(CODE, "STP", AT, 2.5)
    assert found.facts() == {
        "due": "10 giờ 00 phút, ngày 02 tháng 03 năm 2026",
        "due_short": "10:00 02/03/2026",
        "left": "2 giờ 30 phút",
    }
    assert domain.office_warning_key(CODE) == f"{CODE}:office_warning:email"
    for kind, step in (("overdue", None), ("due_soon", None), ("apology_needed", 1)):
        assert domain.office_warning_of(warning(kind, step)) is None
    assert domain.office_warning_of(action(DossierAction.EXTEND)) is None


def test_the_warned_offices_head_comes_before_the_receiving_units() -> None:
    with_office = domain.OfficeWarning(CODE, "STP", AT, 1.0)
    assert with_office.heads_to_try("UBND") == ["STP", "UBND"]
    assert with_office.heads_to_try("STP") == ["STP"]
    assert with_office.heads_to_try(None) == ["STP"]
    assert domain.OfficeWarning(CODE, None, AT, 1.0).heads_to_try("UBND") == ["UBND"]
    assert domain.OfficeWarning(CODE, None, AT, 1.0).heads_to_try(None) == []


@pytest.mark.parametrize(
    ("hours", "text"),
    [(3.0, "3 giờ"), (2.5, "2 giờ 30 phút"), (0.75, "45 phút"), (2.9999, "3 giờ"), (-1, "0 phút")],
)
def test_working_time_is_written_to_the_minute(hours: float, text: str) -> None:
    assert domain.working_time_text(hours) == text


@pytest.mark.parametrize("kind", sorted(domain.ENDING_ACTIONS))
def test_result_refusal_stop_and_withdrawal_end_processing(kind: DossierAction) -> None:
    assert domain.ends_processing(action(kind))


@pytest.mark.parametrize(
    "kind",
    [
        DossierAction.EXTEND,
        DossierAction.REQUEST_SUPPLEMENT,
        DossierAction.WITHDRAW_REQUEST,
        DossierAction.RESUME,
        DossierAction.TRANSFER,
    ],
)
def test_other_actions_do_not_end_processing(kind: DossierAction) -> None:
    assert not domain.ends_processing(action(kind))


def test_sla_finished_ends_processing_and_warnings_do_not() -> None:
    finished = SlaFinished(
        outcome="on_time",
        finished_at=AT,
        due_at=AT,
        supplement_requests=0,
        extended=False,
        office="STP",
        procedure_code="2.000635",
        receiving_unit="U",
        channel=Channel.COUNTER,
    )
    assert domain.ends_processing(wrap(finished))
    assert not domain.ends_processing(warning("overdue"))


def test_message_key_tells_occurrences_apart() -> None:
    first = domain.message_key(CODE, Trigger.SUPPLEMENT_REQUESTED, MessageChannel.SMS, "2")
    second = domain.message_key(CODE, Trigger.SUPPLEMENT_REQUESTED, MessageChannel.SMS, "5")
    assert first != second
    assert first == f"{CODE}:supplement_requested#2:sms"


def test_most_specific_toggle_wins() -> None:
    toggles = {
        ("*", "*", "received"): False,
        ("2.000635", "*", "received"): True,
        ("2.000635", "U1", "received"): False,
        ("*", "U2", "refused"): False,
    }
    assert not domain.is_enabled(toggles, "9.9", "U9", Trigger.RECEIVED)
    assert domain.is_enabled(toggles, "2.000635", "U9", Trigger.RECEIVED)
    assert not domain.is_enabled(toggles, "2.000635", "U1", Trigger.RECEIVED)
    assert not domain.is_enabled(toggles, "2.000635", "U2", Trigger.REFUSED)
    assert domain.is_enabled(toggles, "2.000635", "U1", Trigger.REFUSED)
    assert domain.is_enabled({}, "x", "y", Trigger.OVERDUE)


def test_segments_follow_gsm7_lengths() -> None:
    assert domain.sms_segments("a" * 160) == 1
    assert domain.sms_segments("a" * 161) == 2
    assert domain.sms_segments("a" * 306) == 2
    assert domain.sms_segments("a" * 307) == 3
    assert domain.sms_segments("[" * 80) == 1
    assert domain.sms_segments("[" * 81) == 2


def test_fit_sms_strips_diacritics_and_keeps_short_texts_whole() -> None:
    assert domain.fit_sms("Hồ sơ đã được tiếp nhận ✓", 1) == "Ho so da duoc tiep nhan ?"


@pytest.mark.parametrize("segments", [1, 2, 3])
def test_fit_sms_cuts_at_a_word_within_the_budget(segments: int) -> None:
    text = "Hồ sơ ABC-1 " + "chờ bổ sung giấy tờ " * 40
    fitted = domain.fit_sms(text, segments)
    assert fitted.startswith("Ho so ABC-1 cho bo sung")
    assert fitted.endswith("...")
    assert domain.sms_segments(fitted) == segments
    assert fitted[:-3].split()[-1] in {"cho", "bo", "sung", "giay", "to"}


def test_quiet_hours_over_midnight_in_vietnam_time() -> None:
    start, end = time(21), time(7)
    assert domain.in_quiet_hours(datetime(2026, 3, 2, 21, 0, tzinfo=VN_TZ), start, end)
    assert domain.in_quiet_hours(datetime(2026, 3, 2, 6, 59, tzinfo=VN_TZ), start, end)
    assert not domain.in_quiet_hours(datetime(2026, 3, 2, 7, 0, tzinfo=VN_TZ), start, end)
    # 13:30 UTC is 20:30 in Vietnam: not quiet; 14:30 UTC is 21:30: quiet.
    assert not domain.in_quiet_hours(datetime(2026, 3, 2, 13, 30, tzinfo=UTC), start, end)
    assert domain.in_quiet_hours(datetime(2026, 3, 2, 14, 30, tzinfo=UTC), start, end)
    assert domain.in_quiet_hours(AT.replace(hour=12), time(12), time(13))


def test_retry_delay_doubles_up_to_the_cap() -> None:
    delays = [domain.retry_delay(n, 30, 100) for n in (1, 2, 3, 4)]
    assert delays == [timedelta(seconds=s) for s in (30, 60, 100, 100)]


def test_contact_fingerprint_normalises_phones_and_emails() -> None:
    def fp(contact: str) -> str:
        return domain.contact_fingerprint(contact, SECRET)

    assert fp("0912 345 678") == fp("+84912345678") == fp("84912345678")
    assert fp("A@Example.vn ") == fp("a@example.vn")
    assert fp("0912345678") != fp("0912345679")
    assert "0912345678" not in fp("0912345678")


SECRET = b"k" * 32


def test_a_fingerprint_is_keyed_not_a_plain_hash() -> None:
    # A plain SHA-256 of a phone number is reversed by hashing every number; the HMAC is
    # not, without the secret.
    plain = hashlib.sha256(b"0912345678").hexdigest()
    assert domain.contact_fingerprint("0912345678", SECRET) != plain
    assert domain.contact_fingerprint("0912345678", SECRET) != domain.contact_fingerprint(
        "0912345678", b"o" * 32
    )


@pytest.mark.parametrize("trigger", list(Trigger))
def test_every_trigger_has_sms_and_email_templates(trigger: Trigger) -> None:
    renderer = Renderer(sms_max_segments=1)
    notice = Notice(
        CODE,
        trigger,
        "3",
        {
            "due": "10 giờ 00 phút, ngày 05 tháng 03 năm 2026",
            "due_short": "10:00 05/03/2026",
            "new_due_short": "16:30 09/03/2026",
            "new_due": "16 giờ 30 phút, ngày 09 tháng 03 năm 2026",
        },
    )
    to = Addressee("Trần Thị B", "0987654321", "b@example.vn", "2.000635", "000.00.00.H56")
    sms, email = renderer.drafts(notice, to)
    assert sms.channel is MessageChannel.SMS
    assert sms.body.startswith(f"Ho so {CODE}")
    assert sms.body.isascii()
    assert domain.sms_segments(sms.body) == 1
    assert email.channel is MessageChannel.EMAIL
    assert email.subject is not None
    assert CODE in email.subject
    assert "\n" not in email.subject
    assert email.body.startswith("Kính gửi Trần Thị B,")
    assert CODE in email.body


def test_texts_carry_the_dates_they_announce() -> None:
    renderer = Renderer(sms_max_segments=2)
    to = Addressee("B", "0987654321", "b@example.vn", "2.000635", "U")
    received = Notice(CODE, Trigger.RECEIVED, facts={"due_short": "10:00 05/03/2026", "due": "D"})
    apology = Notice(
        CODE, Trigger.APOLOGY, "7", {"new_due_short": "16:30 09/03/2026", "new_due": "ND"}
    )
    sms, email = renderer.drafts(received, to)
    assert "Hen tra ket qua: 10:00 05/03/2026" in sms.body
    assert "Thời gian hẹn trả kết quả: D." in email.body
    sms, email = renderer.drafts(apology, to)
    assert "Hen tra moi: 16:30 09/03/2026" in sms.body
    assert "xin loi" in sms.body
    assert "Thời gian hẹn trả kết quả mới: ND." in email.body


def test_overdue_texts_say_the_due_time_passed_with_no_result() -> None:
    renderer = Renderer(sms_max_segments=1)
    notice = Notice(CODE, Trigger.OVERDUE, facts={"due_short": "17:00 01/12/2026", "due": "D"})
    sms, email = renderer.drafts(notice, Addressee("B", "0987654321", "b@example.vn", "P", "U"))
    assert sms.body == (
        f"Ho so {CODE} da qua han tra ket qua (17:00 01/12/2026) ma chua co ket qua. "
        "Co quan giai quyet se thong bao ngay hen moi. Xin loi ong/ba."
    )
    assert "đã quá thời hạn trả kết quả (D) mà chưa có kết quả." in email.body


def test_office_warning_names_the_dossier_and_deadline_and_no_applicant() -> None:
    subject, body = Renderer(sms_max_segments=1).office_warning(
        {
            "code": CODE,
            "head": "Nguyễn Văn A",
            "procedure": "2.000635 - Đăng ký khai sinh",
            "office": "STP",
            "due": "17 giờ 00 phút, ngày 01 tháng 12 năm 2026",
            "due_short": "17:00 01/12/2026",
            "left": "2 giờ 30 phút",
        }
    )
    assert CODE in subject
    assert "\n" not in subject
    assert body.startswith("Kính gửi Nguyễn Văn A,")
    assert "(thủ tục 2.000635 - Đăng ký khai sinh)" in body
    assert "thời hạn trả kết quả: 17 giờ 00 phút, ngày 01 tháng 12 năm 2026." in body
    assert "Thời gian làm việc còn lại: 2 giờ 30 phút." in body
    assert "Cơ quan đang giải quyết: STP." in body
    assert "Mẫu số 04" in body


def test_only_the_contacts_given_are_addressed() -> None:
    renderer = Renderer(sms_max_segments=1)
    notice = Notice(CODE, Trigger.RESULT_READY, "9")
    only_mail = renderer.drafts(notice, Addressee("B", None, "b@example.vn", "P", "U"))
    assert [d.channel for d in only_mail] == [MessageChannel.EMAIL]
    assert renderer.drafts(notice, Addressee("B", None, None, "P", "U")) == []
