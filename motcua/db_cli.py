"""``motcua db upgrade|current``: the schema migrations of the services' databases.

Both read the settings the services read (``MOTCUA_DATABASE_URL``, ``MOTCUA_VAR_DIR``,
``MOTCUA_DB_SCHEMA_PREFIX``), and act on one service or, when none is named, on all four.
An unknown service prints one line on stderr and exits with code 2; a database that
cannot be upgraded (a newer release migrated it, or the upgrade failed) exits with 1.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from sqlalchemy.engine import make_url

from shared.db import Database
from shared.settings import SERVICES, ServiceName, Settings, get_settings

if TYPE_CHECKING:
    from shared.migrations import Status

__all__ = ["register"]

_SERVICE_HELP = "intake | routing | sla | notify (all four when omitted)"


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _chosen(service: str | None) -> tuple[ServiceName, ...]:
    if service is None:
        return SERVICES
    for known in SERVICES:
        if service == known:
            return (known,)
    _fail(f"unknown service {service!r}: choose one of {', '.join(SERVICES)}")


def _each(
    settings: Settings,
    services: Sequence[ServiceName],
    act: Callable[[Database, ServiceName], Awaitable[Status]],
) -> None:
    """``act`` on each service's database in turn, printing where it stands."""

    async def run() -> None:
        for service in services:
            db = Database(settings.database_url_for(service), schema=settings.schema_for(service))
            try:
                typer.echo(_line(await act(db, service)))
            finally:
                await db.dispose()

    asyncio.run(run())


def _line(found: Status) -> str:
    if found.unknown:
        where = f"unknown to this release: {', '.join(found.unknown)}"
    else:
        where = "at head" if found.at_head else f"head is {', '.join(found.head)}"
    return f"{found.service:<8} {found.describe_current()}  ({where})"


def _sqlite_file(url: str) -> Path | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def register(app: typer.Typer) -> None:
    """Add the ``db`` command group to ``app``."""
    db = typer.Typer(help="The services' database schemas: upgrade, current.", no_args_is_help=True)

    @db.command("upgrade")
    def upgrade(
        service: Annotated[str | None, typer.Argument(help=_SERVICE_HELP)] = None,
    ) -> None:
        """Upgrade each database to the newest migration (what a service does at start
        unless MOTCUA_DB_UPGRADE_AT_START=false); print where each stands."""
        from shared import migrations  # noqa: PLC0415  (Alembic is slow to import)

        chosen = _chosen(service)
        try:
            _each(get_settings(), chosen, migrations.upgrade)
        except migrations.MigrationError as error:
            typer.echo(f"error: {error}", err=True)
            raise typer.Exit(1) from None

    @db.command("current")
    def current(
        service: Annotated[str | None, typer.Argument(help=_SERVICE_HELP)] = None,
    ) -> None:
        """Print each database's revisions (one per branch) and whether they are head."""
        from shared import migrations  # noqa: PLC0415  (Alembic is slow to import)

        settings = get_settings()
        present: list[ServiceName] = []
        for name in _chosen(service):
            file = _sqlite_file(settings.database_url_for(name))
            if file is not None and not file.exists():  # reading must not create it
                typer.echo(f"{name:<8} no database ({file})")
            else:
                present.append(name)
        _each(settings, present, migrations.status)

    app.add_typer(db, name="db")
