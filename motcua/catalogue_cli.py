"""``motcua catalogue``: the procedure catalogue, on routing's database.

Works on the database the routing service uses (the settings' ``MOTCUA_*`` variables).
Every change is a new catalogue version whose ``catalogue.published`` event waits in
routing's outbox until the routing process publishes it. Every refused input prints one
line per bad field on stderr and exits with code 2; nothing is written then.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from motcua.routing_cli import who, with_routing
from shared.catalogue import Catalogue, ProcedureError, parse_procedure

By = Annotated[
    str | None,
    typer.Option("--by", help="Who makes the change (recorded); default: the login name."),
]
JsonFile = Annotated[Path, typer.Argument(help="JSON file ('-': standard input).")]


def _fail(lines: list[str]) -> NoReturn:
    for line in lines:
        typer.echo(f"error: {line}", err=True)
    raise typer.Exit(2)


def _refused(error: ProcedureError) -> NoReturn:
    _fail([f"{field}: {message}" for field, message in error.errors])


def _read_json(path: Path) -> Any:
    try:
        text = (
            typer.get_text_stream("stdin").read() if str(path) == "-" else path.read_text("utf-8")
        )
        return json.loads(text)
    except (OSError, json.JSONDecodeError) as exc:
        _fail([f"{path}: {exc}"])


def _changed(catalogue: Catalogue, what: str) -> None:
    typer.echo(f"catalogue v{catalogue.version}: {what} ({len(catalogue.procedures)} procedures)")


def list_procedures() -> None:
    """The current catalogue: code, field, time limit, name (tab-separated)."""
    catalogue = with_routing(lambda routing: routing.catalogues.current())
    typer.echo(f"catalogue v{catalogue.version}: {len(catalogue.procedures)} procedures")
    for code in sorted(catalogue.procedures):
        p = catalogue.procedures[code]
        limit = f"{p.duration.value} {p.duration.unit.value}"
        typer.echo(f"{p.code}\t{p.field}\t{limit}\t{p.name}")


def add_procedure(
    path: JsonFile,
    by: By = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="Replace the procedure of the same code.")
    ] = False,
) -> None:
    """Add a procedure from a JSON file (the API's body): a new catalogue version."""
    raw = _read_json(path)
    if not isinstance(raw, dict):
        _fail([f"{path}: a procedure is a JSON object"])
    try:
        procedure = parse_procedure(raw)
        catalogue = with_routing(
            lambda routing: routing.catalogues.add_procedure(procedure, replace=replace, by=who(by))
        )
    except ProcedureError as error:
        _refused(error)
    _changed(catalogue, f"{'replaced' if replace else 'added'} {procedure.code}")


def remove_procedure(
    code: Annotated[str, typer.Argument(help="Procedure code (mã TTHC).")], by: By = None
) -> None:
    """Remove a procedure: a new catalogue version."""
    try:
        catalogue = with_routing(
            lambda routing: routing.catalogues.remove_procedure(code, by=who(by))
        )
    except ProcedureError as error:
        _refused(error)
    _changed(catalogue, f"removed {code}")


def import_catalogue(path: JsonFile, by: By = None) -> None:
    """Replace the whole catalogue with a file's procedures (one new version).

    The file is a list of procedures, or an object with a ``procedures`` list (the
    shipped ``shared/data/procedures.json`` shape).
    """
    raw = _read_json(path)
    procedures = raw.get("procedures") if isinstance(raw, dict) else raw
    if not isinstance(procedures, list) or not all(isinstance(p, dict) for p in procedures):
        _fail([f"{path}: expected a list of procedures or {{'procedures': [...]}}"])
    try:
        catalogue = with_routing(
            lambda routing: routing.catalogues.import_catalogue(procedures, by=who(by))
        )
    except ProcedureError as error:
        _refused(error)
    _changed(catalogue, f"imported {path.name}")


def history() -> None:
    """Every catalogue version: version, when, who, what, published (tab-separated)."""
    for row in with_routing(lambda routing: routing.catalogues.history()):
        published = row.published_at.isoformat() if row.published_at else "not yet published"
        typer.echo(
            f"{row.version}\t{row.changed_at.isoformat()}\t{row.changed_by}\t{row.change}"
            f"\t{published}"
        )


def register(app: typer.Typer) -> None:
    """Add the ``catalogue`` group to the motcua command line."""
    catalogue = typer.Typer(help="The procedure catalogue (versions published to the services).")
    catalogue.command("list")(list_procedures)
    catalogue.command("add")(add_procedure)
    catalogue.command("remove")(remove_procedure)
    catalogue.command("import")(import_catalogue)
    catalogue.command("history")(history)
    app.add_typer(catalogue, name="catalogue")
