"""``motcua portal status|resync``: the national portal sync, over the portal's database.

``status`` prints dossiers synced, pending and failed and the oldest pending state, in all
and per receiving unit; ``resync <code>`` sends one dossier again, ``resync --failed``
every dossier of the failed list. The running portal service sends them.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated

import typer

from services.portal import process
from services.portal.app import SyncStatus
from shared.clock import in_vietnam
from shared.errors import NotFound
from shared.settings import get_settings


def _when(value: datetime | None) -> str:
    return "-" if value is None else in_vietnam(value).strftime("%d/%m/%Y %H:%M:%S")


def status_lines(status: SyncStatus) -> list[str]:
    """The printout of ``motcua portal status``."""
    lines = [
        "portal: " + ("configured" if status.configured else process.NOT_CONFIGURED),
        f"synced {status.synced}  pending {status.pending}  failed {status.failed}  "
        f"oldest pending {_when(status.oldest_pending)}",
    ]
    if status.units:
        lines.append(f"{'unit':<16} {'synced':>7} {'pending':>8} {'failed':>7}  oldest pending")
        lines.extend(
            f"{u.unit or '?':<16} {u.synced:>7} {u.pending:>8} {u.failed:>7}  "
            f"{_when(u.oldest_pending)}"
            for u in status.units
        )
    return lines


async def _status() -> SyncStatus:
    settings = get_settings()
    operations = process.standalone(settings)
    try:
        await process.prepare(operations, settings)
        return await operations.status()
    finally:
        await operations.db.dispose()


async def _resync(code: str | None) -> int:
    settings = get_settings()
    operations = process.standalone(settings)
    try:
        await process.prepare(operations, settings)
        if code is None:
            return await operations.resync_failed()
        await operations.resync(code)
        return 1
    finally:
        await operations.db.dispose()


def status_command() -> None:
    """Dossiers synced, pending and failed, and the oldest pending state, per unit."""
    for line in status_lines(asyncio.run(_status())):
        typer.echo(line)


def resync_command(
    code: Annotated[str | None, typer.Argument(help="The dossier to send again.")] = None,
    failed: Annotated[
        bool, typer.Option("--failed", help="Every dossier of the failed list.")
    ] = False,
) -> None:
    """Send one dossier again, or every dossier of the failed list (``--failed``)."""
    if (code is None) == (not failed):
        typer.echo("give a dossier code or --failed", err=True)
        raise typer.Exit(2)
    try:
        count = asyncio.run(_resync(code))
    except NotFound as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{count} dossier(s) will be sent again")


def register(app: typer.Typer) -> None:
    """Add the ``portal`` group to the motcua command line."""
    portal = typer.Typer(help="The sync to the national public-service portal (Cổng DVCQG).")
    portal.command("status")(status_command)
    portal.command("resync")(resync_command)
    app.add_typer(portal, name="portal")
