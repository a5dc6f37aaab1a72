"""Intake's pure rules: dossier codes, reception day, initial status."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

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


# --- the lifecycle state machine ---------------------------------------------------

T0 = datetime(2026, 6, 2, 2, 0, tzinfo=UTC)
FINISHED = {
    domain.DossierStatus.REFUSED,
    domain.DossierStatus.WITHDRAWN,
    domain.DossierStatus.RETURNED,
}


def state(status: domain.DossierStatus, **kw: object) -> domain.DossierState:
    fields: dict[str, object] = {
        "due_at": T0 + timedelta(days=2),
        "extended_due_at": None,
        "extensions": 0,
        "last_event_at": T0,
    }
    fields.update(kw)
    return domain.DossierState(status=status, **fields)  # type: ignore[arg-type]


def command(cmd: domain.Command, **kw: object) -> domain.CommandInput:
    fields: dict[str, object] = {"at": T0 + timedelta(hours=1), "reason": "lý do"}
    if cmd is domain.Command.EXTEND:
        fields["new_due_at"] = T0 + timedelta(days=5)
    if cmd is domain.Command.TRANSFER:
        fields["office"] = "000.00.03.H56"
    fields.update(kw)
    return domain.CommandInput(command=cmd, **fields)  # type: ignore[arg-type]


def test_every_status_maps_to_a_national_code() -> None:
    codes = {s: s.national_code for s in domain.DossierStatus}
    assert set(codes.values()) == set(range(1, 11))
    assert codes[domain.DossierStatus.WITHDRAWAL_REQUESTED] == 7
    assert codes[domain.DossierStatus.WITHDRAWN] == codes[domain.DossierStatus.STOPPED] == 8


@pytest.mark.parametrize(
    ("status", "cmd"),
    [
        (domain.DossierStatus.WITHDRAWN, domain.Command.RESOLVE),
        (domain.DossierStatus.RESOLVED, domain.Command.WITHDRAW_REQUEST),
        (domain.DossierStatus.RESOLVED, domain.Command.WITHDRAW),
        (domain.DossierStatus.RETURNED, domain.Command.EXTEND),
        (domain.DossierStatus.RECEIVED, domain.Command.ACCEPT),
        (domain.DossierStatus.SUBMITTED, domain.Command.RESOLVE),
    ],
)
def test_illegal_transitions_name_the_current_state(
    status: domain.DossierStatus, cmd: domain.Command
) -> None:
    with pytest.raises(domain.IllegalTransition) as raised:
        domain.decide(state(status), command(cmd), extension_limit=1)
    assert raised.value.current is status
    assert status.value in str(raised.value)


def test_extend_keeps_the_due_time_and_counts() -> None:
    decision = domain.decide(
        state(domain.DossierStatus.PROCESSING),
        command(domain.Command.EXTEND),
        extension_limit=1,
    )
    assert decision.extended_due_at == T0 + timedelta(days=5)
    assert decision.extensions == 1
    with pytest.raises(domain.IllegalTransition, match="limit of 1"):
        domain.decide(
            state(domain.DossierStatus.PROCESSING, extensions=1),
            command(domain.Command.EXTEND, new_due_at=T0 + timedelta(days=9)),
            extension_limit=1,
        )


@pytest.mark.parametrize(
    ("cmd", "kw", "field"),
    [
        (domain.Command.STOP, {"reason": " "}, "reason"),
        (domain.Command.EXTEND, {"new_due_at": None}, "new_due_at"),
        (domain.Command.EXTEND, {"new_due_at": T0}, "new_due_at"),
        (domain.Command.RESOLVE, {"new_due_at": T0 + timedelta(days=3)}, "new_due_at"),
        (domain.Command.TRANSFER, {"office": None}, "office"),
        (domain.Command.RESOLVE, {"at": T0 - timedelta(seconds=1)}, "at"),
    ],
)
def test_bad_fields_are_named(cmd: domain.Command, kw: dict[str, object], field: str) -> None:
    with pytest.raises(domain.InvalidCommand) as raised:
        domain.decide(state(domain.DossierStatus.PROCESSING), command(cmd, **kw), extension_limit=1)
    assert raised.value.field == field


def test_an_extension_is_bounded() -> None:
    in_force = state(domain.DossierStatus.PROCESSING)
    assert in_force.due_at is not None
    latest = in_force.due_at + timedelta(days=30)
    decision = domain.decide(
        in_force,
        command(domain.Command.EXTEND, new_due_at=latest),
        extension_limit=1,
        extension_max_days=30,
    )
    assert decision.extended_due_at == latest
    with pytest.raises(domain.InvalidCommand, match="at most 30 days") as raised:
        domain.decide(
            in_force,
            command(domain.Command.EXTEND, new_due_at=latest + timedelta(seconds=1)),
            extension_limit=1,
            extension_max_days=30,
        )
    assert raised.value.field == "new_due_at"
    with pytest.raises(domain.InvalidCommand, match="at most 90 days"):  # the default
        domain.decide(
            in_force,
            command(domain.Command.EXTEND, new_due_at=datetime(9999, 12, 31, tzinfo=UTC)),
            extension_limit=1,
        )


@given(st.lists(st.sampled_from(list(domain.Command)), max_size=30))
def test_any_command_sequence_follows_the_table(commands: list[domain.Command]) -> None:
    current = state(domain.DossierStatus.SUBMITTED)
    at = T0
    for cmd in commands:
        at += timedelta(hours=1)
        due = (current.extended_due_at or current.due_at or T0) + timedelta(days=1)
        sources, target = domain.TRANSITIONS[cmd]
        try:
            decision = domain.decide(
                current,
                command(cmd, at=at, new_due_at=due if cmd is domain.Command.EXTEND else None),
                extension_limit=1,
            )
        except domain.IllegalTransition:
            assert current.status not in sources or cmd is domain.Command.EXTEND
            continue
        assert current.status in sources
        assert current.status not in FINISHED  # nothing leaves a final state
        assert decision.status == (target or current.status)
        current = domain.DossierState(
            decision.status, current.due_at, decision.extended_due_at, decision.extensions, at
        )


def test_phone_numbers_normalise() -> None:
    assert domain.normalise_phone("+84912345678") == "0912345678"
    assert domain.normalise_phone("0912 345 678") == "0912345678"
    assert domain.normalise_phone("12345") is None


def test_roles_per_command() -> None:
    assert domain.may_give("office", domain.Command.RESOLVE)
    assert not domain.may_give("counter", domain.Command.RESOLVE)
    assert not domain.may_give("viewer", domain.Command.ACCEPT)
    assert all(domain.may_give("importer", c) for c in domain.Command)
