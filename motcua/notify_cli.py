"""``motcua notify``: switch message triggers on or off, record a citizen's opt-out,
manage office heads, queue a digest by hand.

Writes notify's own database directly (the service reads toggles and opt-outs per
batch, heads when a digest is queued, and its dispatcher sends queued digests, so a
running notify picks changes up by itself). Heads' names and e-mails are personal data:
``heads list`` shows them to the operator; nothing is logged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer

from services.notify import process
from services.notify.app import Notifier
from services.notify.digest import Digests
from services.notify.digest.domain import head_problem, parse_period
from services.notify.domain import ANY, Trigger
from shared.settings import get_settings

T = TypeVar("T")

notify_app = typer.Typer(
    help="Notify: message triggers, citizens' opt-outs, office heads and their digest."
)
heads_app = typer.Typer(help="Office heads: who receives each unit's digest e-mail.")
notify_app.add_typer(heads_app, name="heads")


def _with_process(work: Callable[[process.NotifyProcess], Awaitable[T]]) -> T:
    """Run ``work`` on notify's use cases over its database (``process.standalone``,
    prepared), then close the database."""

    async def run() -> T:
        settings = get_settings()
        notify = process.standalone(settings)
        await process.prepare(notify, settings)
        try:
            return await work(notify)
        finally:
            await notify.runtime.db.dispose()

    return asyncio.run(run())


def _with_notifier(work: Callable[[Notifier], Awaitable[T]]) -> T:
    return _with_process(lambda notify: work(notify.notifier))


@notify_app.command("toggle")
def toggle(
    trigger: Annotated[Trigger, typer.Argument(help="Which trigger.")],
    enabled: Annotated[bool, typer.Option("--on/--off", help="Send it or not.")],
    procedure: Annotated[str, typer.Option(help="Procedure code, or * for any.")] = ANY,
    unit: Annotated[str, typer.Option(help="Receiving unit, or * for any.")] = ANY,
) -> None:
    """Switch a trigger on or off for a procedure and unit (the most specific setting wins)."""
    _with_notifier(lambda n: n.set_toggle(trigger, enabled, procedure=procedure, unit=unit))
    typer.echo(f"{trigger.value} {'on' if enabled else 'off'} for {procedure} at {unit}")


@notify_app.command("toggles")
def toggles() -> None:
    """List the triggers switched on or off (anything not listed is on)."""
    for (procedure, unit, trigger), on in sorted(_with_notifier(Notifier.toggles).items()):
        typer.echo(f"{trigger}\t{'on' if on else 'off'}\t{procedure}\t{unit}")


@notify_app.command("opt-out")
def opt_out(
    dossier: Annotated[str | None, typer.Option(help="Stop messages about this dossier.")] = None,
    contact: Annotated[
        str | None, typer.Option(help="Stop messages to this phone or e-mail (stored hashed).")
    ] = None,
    undo: Annotated[
        bool, typer.Option("--undo", help="Withdraw the opt-out: messages are sent again.")
    ] = False,
) -> None:
    """Record a citizen's opt-out (queued messages it covers are suppressed), or withdraw
    it with ``--undo`` (messages already suppressed stay so)."""
    if not (dossier or contact):
        typer.echo("error: give --dossier or --contact", err=True)
        raise typer.Exit(2)
    if undo:
        removed = _with_notifier(lambda n: n.undo_opt_out(dossier=dossier, contact=contact))
        typer.echo(f"opt-out withdrawn ({removed} recorded target(s) removed)")
        return
    suppressed = _with_notifier(lambda n: n.opt_out(dossier=dossier, contact=contact))
    typer.echo(f"opt-out recorded; {suppressed} queued message(s) suppressed")


def _with_digests(work: Callable[[Digests], Awaitable[T]]) -> T:
    return _with_process(lambda notify: work(notify.digests))


@heads_app.command("add")
def heads_add(
    unit: Annotated[str, typer.Argument(help="Agency code of the unit.")],
    email: Annotated[str, typer.Option(help="The head's e-mail address.")],
    name: Annotated[str, typer.Option(help="The head's name, as the e-mail greets them.")],
) -> None:
    """Record (or replace) the head of a unit."""
    problem = head_problem(unit, name, email)
    if problem:
        typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(2)
    _with_digests(lambda d: d.set_head(unit, name=name, email=email))
    typer.echo(f"head of {unit} recorded")


@heads_app.command("list")
def heads_list() -> None:
    """List the office heads: unit, e-mail, name."""
    for head in _with_digests(Digests.heads):
        typer.echo(f"{head.unit}\t{head.email}\t{head.name}")


@heads_app.command("remove")
def heads_remove(unit: Annotated[str, typer.Argument(help="Agency code of the unit.")]) -> None:
    """Forget the head of a unit (its digests stop)."""
    if not _with_digests(lambda d: d.remove_head(unit)):
        typer.echo(f"error: no head recorded for {unit}", err=True)
        raise typer.Exit(1)
    typer.echo(f"head of {unit} removed")


@notify_app.command("digest")
def digest(
    period: Annotated[str, typer.Option(help="2026-10 (a month) or 2026-W43 (an ISO week).")],
    unit: Annotated[str | None, typer.Option(help="Only this unit.")] = None,
) -> None:
    """Queue a period's digest to each office head now (once per unit and period: a digest
    already queued or sent is not queued again); a running notify sends it."""
    try:
        wanted = parse_period(period)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    queued = _with_digests(lambda d: d.queue(wanted, unit=unit))
    for key in queued:
        typer.echo(key)
    typer.echo(f"{len(queued)} digest(s) queued")


def register(app: typer.Typer) -> None:
    """Add ``motcua notify ...`` to the main command line."""
    app.add_typer(notify_app, name="notify")
