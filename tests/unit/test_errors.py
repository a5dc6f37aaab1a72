"""The one error vocabulary (``shared.errors``): each service's refusals keep the status
and body their clients know, and the vocabulary itself knows no web framework."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from services.intake.domain import Command, DossierStatus, IllegalTransition, InvalidCommand
from services.intake.queue.domain import CounterState, IllegalCounterChange
from services.routing.domain import NoSuchRule, RuleError
from shared.calendar import CalendarEditError, CalendarRangeError
from shared.catalogue import ProcedureError, UnknownProcedure
from shared.errors import InvalidFields, NotFound, Refusal, TooMany

ERRORS = Path(__file__).parents[2] / "shared" / "errors.py"


def test_the_vocabulary_imports_no_web_framework() -> None:
    tree = ast.parse(ERRORS.read_text(encoding="utf-8"))
    imported = {
        name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for name in (
            [alias.name for alias in node.names]
            if isinstance(node, ast.Import)
            else [node.module or ""]
        )
    }
    assert imported <= {"__future__", "collections", "typing"}


def test_an_illegal_transition_is_a_409_with_the_current_status() -> None:
    error = IllegalTransition(Command.ACCEPT, DossierStatus.REFUSED)
    assert isinstance(error, ValueError)
    assert error.status == 409
    body = error.body()
    assert body["detail"] == str(error)
    assert body["status"] == DossierStatus.REFUSED.value
    assert body["national_status"] == DossierStatus.REFUSED.national_code


def test_field_errors_keep_fastapis_shape() -> None:
    command = InvalidCommand("reason", "refuse needs a reason")
    assert (command.status, str(command)) == (422, "reason: refuse needs a reason")
    assert command.body() == {
        "detail": [
            {"loc": ["body", "reason"], "msg": "refuse needs a reason", "type": "value_error"}
        ]
    }
    procedure = ProcedureError([("steps.0.hours", "must be positive")])
    assert procedure.body()["detail"][0]["loc"] == ["body", "steps", "0", "hours"]
    query = InvalidFields([("from", "too early")], location="query")
    assert query.body()["detail"][0]["loc"] == ["query", "from"]


def test_a_missing_procedure_or_rule_is_a_404_and_still_what_it_was() -> None:
    procedure = UnknownProcedure([("code", "no procedure 1.000001 in catalogue v3")])
    assert isinstance(procedure, ProcedureError)
    assert isinstance(procedure, NotFound)
    assert procedure.status == 404
    assert procedure.body() == {"detail": "code: no procedure 1.000001 in catalogue v3"}
    rule = NoSuchRule("no rule of priority 9 in rules v2")
    assert isinstance(rule, RuleError)
    assert rule.status == 404
    assert RuleError("rule refused").status == 422


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (CalendarRangeError("2031-01-01: the calendar knows only ..."), 503),
        (CalendarEditError("2031-01-01 is not a special day"), 422),
        (IllegalCounterChange(CounterState.PAUSED), 409),
    ],
)
def test_domain_errors_stay_value_errors(error: Refusal, status: int) -> None:
    assert isinstance(error, ValueError)
    assert error.status == status


def test_too_many_says_when_to_retry_in_whole_seconds() -> None:
    assert TooMany("slow down", retry_after=0.2).headers == {"Retry-After": "1"}
    assert TooMany("slow down", retry_after=41.6).headers == {"Retry-After": "42"}
