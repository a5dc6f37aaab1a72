"""``motcua rules``: the routing rules, the manual queue and re-routing, on routing's database.

Works on the database the routing service uses (the settings' ``MOTCUA_*`` variables);
events it produces (re-routing, manual assignment) wait in routing's outbox until the
routing process publishes them. Every refused input prints one line on stderr and exits
with code 2.
"""

from __future__ import annotations

import asyncio
import getpass
from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, NoReturn, TypeVar

import typer

from services.routing import domain
from services.routing.app import AssignError, Routing
from services.routing.process import prepare, standalone
from shared.settings import get_settings

T = TypeVar("T")

By = Annotated[
    str | None,
    typer.Option("--by", help="Who makes the change (recorded); default: the login name."),
]
StepsOption = Annotated[
    list[str] | None,
    typer.Option(
        "--step",
        help="A chain step OFFICE:HOURS (OFFICE '-' = the receiving unit); repeat in order.",
    ),
]


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def who(by: str | None) -> str:
    """Who makes a change: ``--by``, or the operator's login name."""
    return by or getpass.getuser()


def with_routing(work: Callable[[Routing], Awaitable[T]]) -> T:
    """Run ``work`` on routing's own database (its events wait in routing's outbox)."""

    async def main() -> T:
        settings = get_settings()
        routing = standalone(settings)
        try:
            await prepare(routing, settings)
            return await work(routing)
        finally:
            await routing.db.dispose()

    return asyncio.run(main())


def _steps(raw: list[str] | None) -> list[dict[str, Any]] | None:
    if not raw:
        return None
    steps = []
    for text in raw:
        office, sep, hours = text.rpartition(":")
        try:
            amount = Decimal(hours)
        except InvalidOperation:
            amount = Decimal(0)
        if not sep or not office or amount <= 0:
            _fail(f"--step {text!r} must be OFFICE:HOURS with HOURS > 0, e.g. 000.00.61.H56:8")
        steps.append({"office": None if office == "-" else office, "hours": amount})
    return steps


def _describe(rule: domain.Rule) -> str:
    criteria = ", ".join(f"{k}={v}" for k, v in rule.criteria().items()) or "any dossier"
    chain = (
        " -> ".join(f"{s.office or 'receiving unit'} ({s.hours} h)" for s in rule.steps)
        if rule.steps
        else "catalogue chain"
    )
    return f"{rule.priority}\t{criteria}\t{rule.office}\t{chain}\t{rule.note}"


def list_rules() -> None:
    """The rules in force, in the order they are tried (tab-separated)."""
    current = with_routing(lambda routing: routing.rules())
    typer.echo(f"rules v{current.version}: {len(current.rules)} rule(s)")
    for rule in current.rules:
        typer.echo(_describe(rule))


def add_rule(
    *,
    priority: Annotated[int, typer.Option("--priority", help="Order of trial, unique.")],
    office: Annotated[str, typer.Option("--office", help="Agency code of the office.")],
    by: By = None,
    procedure: Annotated[str | None, typer.Option("--procedure")] = None,
    field: Annotated[str | None, typer.Option("--field", help="Lĩnh vực.")] = None,
    level: Annotated[str | None, typer.Option("--level", help="tinh, xa or huyen.")] = None,
    unit: Annotated[str | None, typer.Option("--unit", help="Receiving unit.")] = None,
    channel: Annotated[str | None, typer.Option("--channel", help="counter, online, post.")] = None,
    step: StepsOption = None,
    note: Annotated[str, typer.Option("--note")] = "",
) -> None:
    """Add a rule (a new version of the rules)."""
    raw = {
        "priority": priority,
        "office": office,
        "procedure": procedure,
        "field": field,
        "level": level,
        "receiving_unit": unit,
        "channel": channel,
        "steps": _steps(step),
        "note": note,
    }
    try:
        rule = domain.parse_rule(raw)
        current = with_routing(lambda routing: routing.add_rule(rule, by=who(by)))
    except domain.RuleError as error:
        _fail(str(error))
    typer.echo(f"rules v{current.version}: added rule {priority}")


def remove_rule(
    priority: Annotated[int, typer.Argument(help="Priority of the rule to remove.")],
    by: By = None,
) -> None:
    """Remove a rule (a new version of the rules)."""
    try:
        current = with_routing(lambda routing: routing.remove_rule(priority, by=who(by)))
    except domain.RuleError as error:
        _fail(str(error))
    typer.echo(f"rules v{current.version}: removed rule {priority}")


def try_rules(
    procedure: Annotated[str, typer.Option("--procedure", help="Procedure code.")],
    unit: Annotated[str, typer.Option("--unit", help="Receiving unit.")],
    channel: Annotated[str, typer.Option("--channel")] = "counter",
    field: Annotated[str | None, typer.Option("--field", help="Default: the catalogue's.")] = None,
    level: Annotated[str | None, typer.Option("--level", help="Default: the catalogue's.")] = None,
) -> None:
    """Where would such a dossier go, and why (nothing is routed)."""

    async def work(routing: Routing) -> domain.Routed | domain.Unroutable:
        facts = routing.facts(procedure, unit, channel, field=field, level=level)
        return await routing.test(facts)

    decision = with_routing(work)
    if isinstance(decision, domain.Unroutable):
        typer.echo(f"manual queue (rules v{decision.rule_version}): {decision.reason}")
        return
    typer.echo(f"office {decision.office} ({decision.rule})")
    typer.echo(f"why: {decision.explanation}")
    for position, (office, hours) in enumerate(decision.steps, start=1):
        typer.echo(f"step {position}: {office}, {hours} working hours")


def history() -> None:
    """Every version of the rules: version, when, who, what (tab-separated)."""
    for row in with_routing(lambda routing: routing.history()):
        typer.echo(f"{row.version}\t{row.changed_at.isoformat()}\t{row.changed_by}\t{row.change}")


def reroute() -> None:
    """Move open dossiers (and the manual queue) to the current rules; print what moved."""
    report = with_routing(lambda routing: routing.reroute())
    typer.echo(
        f"rules v{report.rule_version}: {len(report.moved)} moved, "
        f"{report.unchanged} unchanged, {len(report.kept)} kept"
    )
    for move in report.moved:
        typer.echo(f"moved\t{move.dossier_code}\t{move.before} -> {move.after}\t{move.rule}")
    for code, why in report.kept:
        typer.echo(f"kept\t{code}\t{why}")


def queue() -> None:
    """The manual queue, oldest first: dossier, procedure, reason (tab-separated)."""
    for entry in with_routing(lambda routing: routing.manual_queue()):
        typer.echo(f"{entry.dossier_code}\t{entry.procedure_code}\t{entry.reason}")


def assign(
    code: Annotated[str, typer.Argument(help="Dossier code.")],
    office: Annotated[str, typer.Argument(help="Agency code of the office.")],
    by: By = None,
    step: StepsOption = None,
) -> None:
    """Route a queued dossier by hand (or re-assign one still at its first step)."""
    raw_steps = _steps(step)
    try:
        steps = domain.parse_rule({"priority": 1, "office": office, "steps": raw_steps}).steps
        row = with_routing(lambda routing: routing.assign(code, office, steps=steps, by=who(by)))
    except (domain.RuleError, AssignError) as error:
        _fail(str(error))
    typer.echo(f"{row.dossier_code} assigned to {row.office}")


def register(app: typer.Typer) -> None:
    """Add the ``rules`` group to the motcua command line."""
    rules = typer.Typer(help="Routing rules, the manual queue and re-routing.")
    rules.command("list")(list_rules)
    rules.command("add")(add_rule)
    rules.command("remove")(remove_rule)
    rules.command("test")(try_rules)
    rules.command("history")(history)
    rules.command("reroute")(reroute)
    rules.command("queue")(queue)
    rules.command("assign")(assign)
    app.add_typer(rules, name="rules")
