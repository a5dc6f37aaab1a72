"""``shared.chain.fit_step``: the one due-time rule of a chain step, for sla and routing."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from shared.calendar import VN_TZ, build_calendar
from shared.chain import fit_step, working_hours

CALENDAR = build_calendar()
MONDAY = datetime(2026, 3, 2, 10, 0, tzinfo=VN_TZ)


def test_without_a_dossier_due_time_a_step_gets_its_own_hours() -> None:
    fitted = fit_step(CALENDAR, MONDAY, [Decimal(8), Decimal(16)], None)
    assert fitted.given == working_hours(Decimal(8))
    assert fitted.due_at == CALENDAR.add_working_time(MONDAY, working_hours(Decimal(8)))
    assert fitted.due_at == datetime(2026, 3, 3, 10, 0, tzinfo=VN_TZ)
    assert fitted.scaled_from is None


def test_steps_that_fit_keep_their_own_hours() -> None:
    dossier_due = CALENDAR.add_working_time(MONDAY, working_hours(Decimal(24)))
    fitted = fit_step(CALENDAR, MONDAY, [Decimal(8), Decimal(16)], dossier_due)
    assert fitted.given == working_hours(Decimal(8))
    assert fitted.due_at == datetime(2026, 3, 3, 10, 0, tzinfo=VN_TZ)
    assert fitted.scaled_from is None


def test_steps_that_do_not_fit_share_what_is_left_and_end_by_the_dossier_due_time() -> None:
    dossier_due = CALENDAR.add_working_time(MONDAY, working_hours(Decimal(12)))
    fitted = fit_step(CALENDAR, MONDAY, [Decimal(8), Decimal(16)], dossier_due)
    assert fitted.given == working_hours(Decimal(4))  # 8 of the 24 hours to come, of 12 left
    assert fitted.due_at == CALENDAR.add_working_time(MONDAY, working_hours(Decimal(4)))
    assert fitted.scaled_from == Decimal(8)
    assert fitted.due_at <= dossier_due


def test_a_step_never_ends_after_the_dossier() -> None:
    five_pm = datetime(2026, 12, 1, 17, 0, tzinfo=VN_TZ)
    at = datetime(2026, 12, 1, 14, 11, tzinfo=VN_TZ)
    fitted = fit_step(CALENDAR, at, [Decimal(8)], five_pm)
    assert fitted.due_at == five_pm
