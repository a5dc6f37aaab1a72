"""Catalogue changes: a procedure is checked field by field, and a refused change changes
nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from shared.catalogue import (
    UNSOURCED,
    ProcedureError,
    added,
    catalogue_from,
    imported,
    parse_procedure,
    procedures_json,
    removed,
    seed_catalogue,
)
from shared.catalogue_sync import catalogue_of, published_event
from shared.events import CataloguePublished, Envelope, decode


def procedure_json(**overrides: Any) -> dict[str, Any]:
    """The issue's JSON shape (no ``source``): a two-office chain of 2 working days."""
    raw: dict[str, Any] = {
        "code": "1.999001",
        "name": "Thủ tục thử nghiệm",
        "field": "Hộ tịch",
        "levels": ["xa"],
        "duration": {"value": 2, "unit": "working_days"},
        "online_duration": None,
        "supplement_rule": "pause",
        "fee_vnd": 8000,
        "steps": [{"office": None, "hours": 8}, {"office": "000.00.61.H56", "hours": 8}],
    }
    raw.update(overrides)
    return raw


def fields_of(error: pytest.ExceptionInfo[ProcedureError]) -> list[str]:
    return [field for field, _ in error.value.errors]


def test_the_issues_json_is_a_procedure() -> None:
    procedure = parse_procedure(procedure_json())
    assert procedure.code == "1.999001"
    assert procedure.source == UNSOURCED
    assert sum(step.hours for step in procedure.steps) == Decimal(16)


def test_an_unknown_unit_is_refused_naming_the_field() -> None:
    with pytest.raises(ProcedureError) as error:
        parse_procedure(procedure_json(duration={"value": 2, "unit": "fortnights"}))
    assert fields_of(error) == ["duration.unit"]
    assert "working_days" in str(error.value)


def test_name_and_field_are_bounded_by_what_is_stored() -> None:
    parse_procedure(procedure_json(field="x" * 200))
    with pytest.raises(ProcedureError) as error:
        parse_procedure(procedure_json(name="n" * 501, field="x" * 201))
    assert fields_of(error) == ["name", "field"]
    assert "200" in str(error.value)
    with pytest.raises(ProcedureError) as error:
        parse_procedure(procedure_json(name="", field=""))
    assert fields_of(error) == ["name", "field"]


def test_a_bad_code_is_refused_with_the_expected_form() -> None:
    with pytest.raises(ProcedureError) as error:
        parse_procedure(procedure_json(code="2.635"))
    assert error.value.errors == [
        ("code", "is not a procedure code of the form N.NNNNNN (e.g. 2.000635)")
    ]


def test_a_bad_office_of_a_step_is_refused_naming_the_step() -> None:
    steps = [{"office": None, "hours": 8}, {"office": "police", "hours": 8}]
    with pytest.raises(ProcedureError) as error:
        parse_procedure(procedure_json(steps=steps))
    assert fields_of(error) == ["steps.1.office"]


@pytest.mark.parametrize(
    ("duration", "hours"),
    [({"value": 2, "unit": "working_days"}, 12), ({"value": 6, "unit": "working_hours"}, 8)],
)
def test_steps_must_add_up_to_a_working_time_limit(duration: dict[str, Any], hours: int) -> None:
    with pytest.raises(ProcedureError) as error:
        parse_procedure(procedure_json(duration=duration, steps=[{"office": None, "hours": hours}]))
    assert fields_of(error) == ["steps"]
    assert f"add up to {hours} working hours" in str(error.value)


def test_steps_of_a_calendar_day_limit_are_not_bound_to_it() -> None:
    raw = procedure_json(
        duration={"value": 15, "unit": "calendar_days"}, steps=[{"office": None, "hours": 88}]
    )
    assert parse_procedure(raw).duration.value == 15


def test_every_problem_is_listed_at_once() -> None:
    with pytest.raises(ProcedureError) as error:
        parse_procedure(procedure_json(code="x", levels=["thon"], steps=[]))
    assert set(fields_of(error)) == {"code", "levels.0", "steps"}


def test_adding_gives_the_next_version_and_leaves_the_base_unchanged() -> None:
    seed = seed_catalogue()
    procedure = parse_procedure(procedure_json())
    after = added(seed, procedure)
    assert after.version == seed.version + 1
    assert after.get("1.999001") == procedure
    assert seed.get("1.999001") is None


def test_a_duplicate_code_is_refused_unless_replacing() -> None:
    seed = seed_catalogue()
    existing = seed.procedures["2.000635"]
    cheaper = existing.model_copy(update={"fee_vnd": 5000})
    with pytest.raises(ProcedureError) as error:
        added(seed, cheaper)
    assert fields_of(error) == ["code"]
    assert "already in catalogue v1" in str(error.value)
    replaced = added(seed, cheaper, replace=True)
    assert replaced.procedures["2.000635"].fee_vnd == 5000
    assert len(replaced.procedures) == len(seed.procedures)


def test_removing_an_unknown_code_is_refused() -> None:
    seed = seed_catalogue()
    assert "2.000635" not in removed(seed, "2.000635").procedures
    with pytest.raises(ProcedureError) as error:
        removed(seed, "9.999999")
    assert fields_of(error) == ["code"]


def test_an_import_names_the_entry_of_each_problem() -> None:
    good = procedure_json()
    with pytest.raises(ProcedureError) as error:
        imported(seed_catalogue(), [good, procedure_json(code="bad"), good])
    assert fields_of(error) == ["procedures.1.code", "procedures.2.code"]
    with pytest.raises(ProcedureError) as empty:
        imported(seed_catalogue(), [])
    assert fields_of(empty) == ["procedures"]


def test_the_seed_file_imports_as_it_is() -> None:
    seed = seed_catalogue()
    again = imported(seed, procedures_json(seed))
    assert again.version == 2
    assert again.procedures == seed.procedures


def test_a_version_survives_the_event_and_the_wire() -> None:
    catalogue = added(seed_catalogue(), parse_procedure(procedure_json()))
    event = published_event(catalogue, changed_by="ops", change="add 1.999001")
    wire = Envelope.wrap(
        event, occurred_at=datetime.now(UTC), source="routing", dossier_code=None
    ).encode()
    received = decode(wire).body(CataloguePublished)
    assert catalogue_of(received) == catalogue
    assert catalogue_from(received.version, received.procedures) == catalogue


@pytest.mark.parametrize(
    ("duration", "hours", "step", "most"),
    [
        ({"value": 1, "unit": "same_day"}, [6, 4], 1, "8"),
        ({"value": 2, "unit": "calendar_days"}, [8, 8, 1], 2, "16"),
    ],
)
def test_step_hours_that_can_never_fit_are_refused_naming_procedure_and_step(
    duration: dict[str, Any], hours: list[int], step: int, most: str
) -> None:
    steps = [{"office": None, "hours": h} for h in hours]
    with pytest.raises(ProcedureError) as refused:
        parse_procedure(procedure_json(duration=duration, steps=steps))
    [(where, message)] = refused.value.errors
    assert where == f"steps.{step}.hours"
    assert "procedure 1.999001" in message
    assert f"step {step}" in message
    assert f"({most} working hours)" in message


def test_steps_that_fit_a_same_day_or_calendar_day_limit_are_accepted() -> None:
    same_day = {"value": 1, "unit": "same_day"}
    parse_procedure(procedure_json(duration=same_day, steps=[{"office": None, "hours": 8}]))
    days = {"value": 15, "unit": "calendar_days"}
    parse_procedure(procedure_json(duration=days, steps=[{"office": None, "hours": 40}]))
