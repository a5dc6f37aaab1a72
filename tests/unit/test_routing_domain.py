"""Routing rules: matching order, every criterion, explanations, validation, fallbacks."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from services.routing import domain
from shared.calendar import VN_TZ
from shared.catalogue import seed_catalogue

UNIT = "000.00.00.H56"
OTHER_UNIT = "000.00.01.H56"
POLICE = "000.00.61.H56"
LAND = "000.00.64.H56"


def facts(**overrides: Any) -> domain.Facts:
    values: dict[str, Any] = {
        "procedure": "2.000635",
        "field": "Hộ tịch",
        "level": "xa",
        "receiving_unit": UNIT,
        "channel": "counter",
    }
    values.update(overrides)
    return domain.Facts(**values)


def rule(priority: int, office: str = POLICE, **criteria: Any) -> domain.Rule:
    return domain.parse_rule({"priority": priority, "office": office, **criteria})


def rules(*items: domain.Rule, version: int = 1) -> domain.RuleSet:
    return domain.RuleSet(version, domain.validate_rule_set(items))


@pytest.mark.parametrize(
    ("criterion", "matching", "other"),
    [
        ("procedure", "2.000635", "1.001193"),
        ("field", "Hộ tịch", "Đất đai"),
        ("level", "xa", "tinh"),
        ("receiving_unit", UNIT, OTHER_UNIT),
        ("channel", "counter", "online"),
    ],
)
def test_each_criterion_matches_its_fact_only(criterion: str, matching: str, other: str) -> None:
    assert domain.match([rule(1, **{criterion: matching})], facts()).rule is not None
    missed = domain.match([rule(1, **{criterion: other})], facts())
    assert missed.rule is None
    assert f"rule 1: {criterion}" in missed.explanation


def test_a_rule_without_criteria_matches_any_dossier() -> None:
    found = domain.match([rule(5)], facts(procedure="9.999999", channel="post"))
    assert found.rule is not None
    assert found.explanation == "rule 5 matched: any dossier"


def test_first_match_by_priority_wins_whatever_the_input_order() -> None:
    ordered = domain.validate_rule_set(
        [rule(30, LAND), rule(10, OTHER_UNIT, channel="online"), rule(20, POLICE)]
    )
    assert [r.priority for r in ordered] == [10, 20, 30]
    found = domain.match(ordered, facts())
    assert found.rule is not None
    assert found.rule.office == POLICE
    assert found.explanation.startswith("rule 20 matched: any dossier; before it, rule 10:")
    assert "channel counter is not online (did not match)" in found.explanation


def test_every_criterion_of_a_rule_must_hold() -> None:
    both = rule(1, procedure="2.000635", channel="online")
    found = domain.match([both], facts())
    assert found.rule is None
    assert "channel counter is not online" in found.explanation
    assert "procedure" not in found.explanation


def test_decision_with_rule_uses_the_catalogue_chain_from_the_rule_office() -> None:
    decision = domain.decide(seed_catalogue(), rules(rule(3, POLICE, field="Hộ tịch")), facts())
    assert isinstance(decision, domain.Routed)
    assert decision.office == POLICE
    assert decision.rule == "rules v1: rule 3"
    assert decision.rule_version == 1
    assert decision.steps == ((POLICE, Decimal(8)),)
    assert "rule 3 matched: field=Hộ tịch" in decision.explanation


def test_rule_chain_overrides_the_catalogue_and_null_offices_are_the_receiving_unit() -> None:
    chain = [{"office": LAND, "hours": 4}, {"office": None, "hours": 4}]
    decision = domain.decide(seed_catalogue(), rules(rule(1, LAND, steps=chain)), facts())
    assert isinstance(decision, domain.Routed)
    assert decision.steps == ((LAND, Decimal(4)), (UNIT, Decimal(4)))
    assert decision.explanation.endswith("chain from the rule")


def test_no_rule_matches_the_catalogue_chain_applies() -> None:
    decision = domain.decide(
        seed_catalogue(), rules(rule(1, channel="online")), facts(procedure="1.010801")
    )
    assert isinstance(decision, domain.Routed)
    assert decision.office == UNIT
    assert [office for office, _ in decision.steps] == [UNIT, POLICE, "000.00.62.H56"]
    assert decision.rule == "rules v1: catalogue v1 chain"
    assert decision.explanation.startswith("no rule matched: rule 1: channel counter")


def test_unknown_procedure_without_rule_is_unroutable() -> None:
    decision = domain.decide(seed_catalogue(), domain.RuleSet(0, ()), facts(procedure="9.999999"))
    assert isinstance(decision, domain.Unroutable)
    assert decision.reason == "no rule is defined; procedure 9.999999 is not in catalogue v1"


def test_rule_without_chain_for_an_unknown_procedure_is_unroutable() -> None:
    decision = domain.decide(
        seed_catalogue(), rules(rule(2, procedure="9.999999")), facts(procedure="9.999999")
    )
    assert isinstance(decision, domain.Unroutable)
    assert "rule 2 matched" in decision.reason
    assert "the rule gives no chain" in decision.reason


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"priority": 1, "office": "H56"}, "'H56' is not an agency code"),
        ({"priority": 1, "office": POLICE, "steps": []}, "the chain (steps) is empty"),
        (
            {"priority": 1, "office": POLICE, "steps": [{"office": LAND, "hours": 8}]},
            f"the chain's first step is {LAND}, not the rule's office {POLICE}",
        ),
        ({"priority": 0, "office": POLICE}, "priority"),
        ({"priority": 1, "office": POLICE, "procedure": "2.635"}, "not a procedure code"),
        ({"priority": 1, "office": POLICE, "colour": "red"}, "colour"),
    ],
)
def test_bad_rules_are_refused_with_a_clear_message(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(domain.RuleError, match="rule refused") as refused:
        domain.parse_rule(raw)
    assert message in str(refused.value)


def test_duplicate_priority_is_refused() -> None:
    with pytest.raises(domain.RuleError, match="priority 7 is already taken"):
        domain.validate_rule_set([rule(7, POLICE), rule(7, LAND)])


def test_the_level_is_what_the_procedure_and_the_reception_date_tell() -> None:
    catalogue = seed_catalogue()
    before = datetime(2025, 6, 30, 23, 59, tzinfo=VN_TZ)
    after = datetime(2025, 7, 1, 0, 0, tzinfo=VN_TZ)
    assert domain.level_of(catalogue.get("2.000635"), before) == "xa"
    # xã or huyện: ambiguous before the reform; from 01/07/2025 there is no huyện
    assert domain.level_of(catalogue.get("1.001612"), before) is None
    assert domain.level_of(catalogue.get("1.001612"), after) == "xa"
    assert domain.level_of(catalogue.get("1.001612"), after.astimezone(UTC)) == "xa"
    # xã or tỉnh stays ambiguous: the receiving unit decides
    assert domain.level_of(catalogue.get("1.012795"), after) is None
    assert domain.level_of(None, after) is None
