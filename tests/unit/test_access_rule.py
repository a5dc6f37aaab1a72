"""``shared.auth``'s access rule: what a role grants, and where a unit's key reaches."""

from __future__ import annotations

import pytest

from shared.auth import ALL_UNITS, ROLE_ACCESS, Access, DossierUnits, Principal, Role, may_reach

RECEIVED, ROUTED, STEP, OTHER = "000.00.00.H56", "000.00.02.H56", "000.00.03.H56", "000.00.09.H56"
UNITS = DossierUnits.of(RECEIVED, ROUTED, STEP, None)


def key(role: Role, unit: str) -> Principal:
    return Principal("0123456789ab", role, unit)


@pytest.mark.parametrize(
    ("role", "access", "reached_from"),
    [
        (Role.COUNTER, Access.READ, {RECEIVED, ROUTED, STEP}),
        (Role.COUNTER, Access.READ_PERSONAL, {RECEIVED}),
        (Role.COUNTER, Access.COUNTER_ACTION, {RECEIVED}),
        (Role.COUNTER, Access.OFFICE_ACTION, set()),
        (Role.OFFICE, Access.OFFICE_ACTION, {ROUTED, STEP}),
        (Role.OFFICE, Access.COUNTER_ACTION, set()),
        (Role.OFFICE, Access.READ_PERSONAL, set()),
        (Role.VIEWER, Access.READ, {RECEIVED, ROUTED, STEP}),
        (Role.VIEWER, Access.READ_PERSONAL, set()),
        (Role.KIOSK, Access.READ, set()),
        (Role.KIOSK, Access.RECEIVE, set()),
    ],
)
def test_a_units_key_reaches_where_its_unit_has_the_part(
    role: Role, access: Access, reached_from: set[str]
) -> None:
    for unit in (RECEIVED, ROUTED, STEP, OTHER):
        assert may_reach(key(role, unit), access, UNITS) is (unit in reached_from), unit


def test_admin_and_all_unit_keys_reach_everywhere_their_role_allows() -> None:
    assert all(may_reach(key(Role.ADMIN, OTHER), a, UNITS) for a in Access)
    assert may_reach(key(Role.VIEWER, ALL_UNITS), Access.READ, UNITS)
    assert not may_reach(key(Role.VIEWER, ALL_UNITS), Access.READ_PERSONAL, UNITS)
    assert ROLE_ACCESS[Role.KIOSK] == {Access.QUEUE}


def test_a_dossier_not_routed_yet_is_its_receiving_units_alone() -> None:
    unrouted = DossierUnits.of(RECEIVED)
    assert not may_reach(key(Role.OFFICE, ROUTED), Access.READ, unrouted)
    assert may_reach(key(Role.COUNTER, RECEIVED), Access.READ, unrouted)
