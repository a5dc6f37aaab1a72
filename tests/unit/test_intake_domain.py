"""Intake's pure rules: dossier codes, reception day, initial status."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.intake import domain
from shared.catalogue import seed_catalogue
from shared.events import Channel


def test_code_has_unit_date_and_four_digits() -> None:
    code = domain.dossier_code("000.00.00.H56", date(2025, 2, 18), 1)
    assert code == "000.00.00.H56-250218-0001"


def test_code_grows_a_digit_instead_of_colliding() -> None:
    assert domain.dossier_code("000.00.00.H56", date(2025, 2, 18), 10000).endswith("-10000")


def test_sequence_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        domain.dossier_code("000.00.00.H56", date(2025, 2, 18), 0)


@given(st.integers(min_value=1, max_value=99999), st.dates())
def test_code_parses_back(sequence: int, day: date) -> None:
    code = domain.dossier_code("000.00.01.H22", day, sequence)
    assert domain.parse_dossier_code(code) == ("000.00.01.H22", f"{day:%y%m%d}", sequence)


def test_reception_day_is_the_vietnam_date() -> None:
    # 18:30 UTC on the 17th is 01:30 on the 18th in Vietnam
    assert domain.reception_day(datetime(2025, 2, 17, 18, 30, tzinfo=UTC)) == date(2025, 2, 18)
    with pytest.raises(ValueError, match="timezone-aware"):
        domain.reception_day(datetime(2025, 2, 17))  # noqa: DTZ001


def test_online_waits_for_acceptance() -> None:
    assert domain.initial_status(Channel.ONLINE) is domain.DossierStatus.SUBMITTED
    assert domain.initial_status(Channel.COUNTER) is domain.DossierStatus.RECEIVED
    assert domain.DossierStatus.SUBMITTED.national_code == 1
    assert domain.DossierStatus.RECEIVED.national_code == 2


def test_unknown_procedure_names_the_field() -> None:
    assert domain.catalogue_errors(seed_catalogue(), "9.999999") == [
        ("procedure_code", "unknown procedure '9.999999'")
    ]
    assert domain.catalogue_errors(seed_catalogue(), "2.000635") == []
