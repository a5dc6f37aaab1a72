"""Notify's pure rules: notices from events, keys, toggles, SMS fitting, timing, templates."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

import pytest

from services.notify import domain
from services.notify.domain import Addressee, MessageChannel, Notice, Trigger
from services.notify.render import Renderer
from shared.calendar import VN_TZ
from shared.events import (
    Channel,
    Contact,
    DossierAction,
    DossierActionRecorded,
    DossierReceived,
    Envelope,
    SlaWarning,
    TimeLimit,
)

CODE = "000.00.00.H56-260302-0001"
AT = datetime(2026, 3, 2, 10, 0, tzinfo=VN_TZ)


def wrap(payload: DossierReceived | DossierActionRecorded | SlaWarning) -> Envelope:
    return Envelope.wrap(payload, occurred_at=AT, source="test", dossier_code=CODE)


def action(kind: DossierAction, sequence: int = 1, **extra: object) -> Envelope:
    return wrap(
        DossierActionRecorded(
            action=kind, sequence=sequence, at=AT, status="x", national_status=5, **extra
        )
    )


def warning(kind: str, step: int | None = None) -> Envelope:
    return wrap(
        SlaWarning(
            kind=kind,
            step=step,
            due_at=AT,
            working_hours_left=0.0,
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
        applicant=Contact(name="A"),
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
    assert notice.facts["reason"] == "Lý do"


def test_overdue_and_apology_needed_share_one_key_and_steps_are_ignored() -> None:
    overdue = domain.notice_of(warning("overdue"))
    apology = domain.notice_of(warning("apology_needed"))
    assert overdue is not None
    assert apology is not None
    keys = {
        domain.message_key(n.dossier_code, n.trigger, MessageChannel.SMS, n.occurrence)
        for n in (overdue, apology)
    }
    assert keys == {f"{CODE}:overdue:sms"}
    assert domain.notice_of(warning("overdue", step=1)) is None
    assert domain.notice_of(warning("due_soon")) is None


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
    fp = domain.contact_fingerprint
    assert fp("0912 345 678") == fp("+84912345678") == fp("84912345678")
    assert fp("A@Example.vn ") == fp("a@example.vn")
    assert fp("0912345678") != fp("0912345679")
    assert "0912345678" not in fp("0912345678")


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
            "reason": "Thiếu bản sao giấy khai sinh có chứng thực của người được đăng ký "
            "và văn bản ủy quyền theo quy định hiện hành của pháp luật về hộ tịch",
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


def test_only_the_contacts_given_are_addressed() -> None:
    renderer = Renderer(sms_max_segments=1)
    notice = Notice(CODE, Trigger.RESULT_READY, "9")
    only_mail = renderer.drafts(notice, Addressee("B", None, "b@example.vn", "P", "U"))
    assert [d.channel for d in only_mail] == [MessageChannel.EMAIL]
    assert renderer.drafts(notice, Addressee("B", None, None, "P", "U")) == []
