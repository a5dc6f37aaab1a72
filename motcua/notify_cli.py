"""``motcua notify``: switch message triggers on or off, record a citizen's opt-out.

Writes notify's own database directly (the service reads toggles and opt-outs per
batch, so a running notify picks changes up at its next batch).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer

from services.notify.app import Notifier, build
from services.notify.domain import ANY, Trigger
from shared.settings import get_settings

T = TypeVar("T")

notify_app = typer.Typer(help="Notify: message triggers and citizens' opt-outs.")


def _with_notifier(work: Callable[[Notifier], Awaitable[T]]) -> T:
    async def run() -> T:
        notifier = build(get_settings())
        await notifier.runtime.db.create_tables(notifier.runtime.tables)
        try:
            return await work(notifier)
        finally:
            await notifier.runtime.db.dispose()

    return asyncio.run(run())


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
) -> None:
    """Record a citizen's opt-out; queued messages it covers are suppressed."""
    if not (dossier or contact):
        typer.echo("error: give --dossier or --contact", err=True)
        raise typer.Exit(2)
    suppressed = _with_notifier(lambda n: n.opt_out(dossier=dossier, contact=contact))
    typer.echo(f"opt-out recorded; {suppressed} queued message(s) suppressed")


def register(app: typer.Typer) -> None:
    """Add ``motcua notify ...`` to the main command line."""
    app.add_typer(notify_app, name="notify")
