"""The ``motcua`` command line: run the stack, one service, or the local broker."""

from __future__ import annotations

import contextlib
import signal
from pathlib import Path
from typing import Annotated

import typer
import uvicorn
from pydantic import ValidationError

from motcua import (
    calendar_cli,
    catalogue_cli,
    db_cli,
    dlq_cli,
    keys_cli,
    notify_cli,
    portal_cli,
    routing_cli,
    sla_cli,
)
from motcua.serve import SERVICE_PORTS, configure_logging, serve
from shared.clock import ClockStartError, parse_clock_start
from shared.localbroker import LocalBroker, free_port
from shared.settings import SERVICES, Settings, get_settings, keep_private

app = typer.Typer(
    help="motcua: one-stop counter dossiers, routed, timed and notified.",
    no_args_is_help=True,
    add_completion=False,
)
calendar_cli.register(app)
routing_cli.register(app)
catalogue_cli.register(app)
keys_cli.register(app)
sla_cli.register(app)
notify_cli.register(app)
portal_cli.register(app)
dlq_cli.register(app)
db_cli.register(app)


@app.callback()
def private_state() -> None:
    """motcua: one-stop counter dossiers, routed, timed and notified."""
    # Before any command writes under var_dir (databases, keys, secrets, logs, sinks):
    # files 600, folders 700, in this process and the services it starts. Settings that
    # do not load are reported by the command itself.
    with contextlib.suppress(ValidationError):
        keep_private(get_settings().var_dir)


GATEWAY_PORT = 8000
LOCAL_BROKER_PORT = 9092


@app.command()
def run(
    service: Annotated[str, typer.Argument(help="intake | routing | sla | notify | portal")],
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[
        int | None, typer.Option(help="HTTP port (default: the service's own).")
    ] = None,
) -> None:
    """Run one service (HTTP API, metrics, health, consumers): what a container runs."""
    if service not in SERVICES:
        typer.echo(f"unknown service {service!r}: choose one of {', '.join(SERVICES)}", err=True)
        raise typer.Exit(2)
    try:
        serve(service, _settings(), host=host, port=port)
    except ClockStartError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None


@app.command()
def broker(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = LOCAL_BROKER_PORT,
) -> None:
    """Run only the local Kafka-protocol broker (memory only) until Ctrl-C."""
    with LocalBroker(port) as local:
        typer.echo(f"local broker on {local.bootstrap_servers} (memory only); Ctrl-C stops it")
        signal.sigwait({signal.SIGINT, signal.SIGTERM})


@app.command()
def up(
    port: Annotated[int, typer.Option(help="Port of the single HTTP entry point.")] = GATEWAY_PORT,
) -> None:
    """Run the whole system locally: broker, four services, one entry point."""
    from motcua.gateway import create_gateway, server_config  # noqa: PLC0415
    from motcua.stack import Stack  # noqa: PLC0415

    settings = _settings()
    configure_logging(settings.log_level)
    try:
        clock_start = parse_clock_start(settings.clock_start) if settings.clock_start else None
    except ClockStartError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    broker_port = LOCAL_BROKER_PORT if _is_free(LOCAL_BROKER_PORT) else free_port()
    stack = Stack(
        settings.var_dir,
        broker_port=broker_port,
        service_ports={k: v for k, v in SERVICE_PORTS.items() if _is_free(v)},
        clock_start=clock_start,
    )
    if clock_start is not None:
        typer.echo(
            f"WARNING: MOTCUA_CLOCK_START is set: every service's clock runs from "
            f"{clock_start.isoformat()}, not the real time (development and tests only)"
        )
    typer.echo("starting the local broker and the four services ...")
    try:
        stack.start()
        base = f"http://127.0.0.1:{port}"
        typer.echo(f"\nmotcua is up (state in {stack.var_dir}, logs in {stack.var_dir / 'logs'})")
        typer.echo(f"  broker   {stack.bootstrap_servers} (local, memory only)")
        for svc in stack.services.values():
            typer.echo(f"  {svc.name:<8} {svc.url}  (/metrics, /health/ready)")
        typer.echo(f"  gateway  {base}  — API docs at {base}/docs")
        desk = keys_cli.ensure_dev_desk_keys(stack.settings())
        typer.echo(
            f"\ndevelopment keys (header X-API-Key; also in {stack.var_dir}/dev-<role>.key):"
        )
        typer.echo(f"  admin    {stack.admin_key}")
        for role, key in desk.items():
            typer.echo(f"  {role.value:<8} {key}  (unit {keys_cli.DEV_UNIT})")
        typer.echo("Ctrl-C stops everything.\n")
        gateway = create_gateway({n: s.url for n, s in stack.services.items()}, settings)
        server = uvicorn.Server(server_config(gateway, host="127.0.0.1", port=port))
        with contextlib.suppress(KeyboardInterrupt):  # uvicorn raises Ctrl-C again, once stopped
            server.run()
        if not server.started:
            typer.echo(f"the entry point could not listen on port {port}", err=True)
            raise typer.Exit(1)
    finally:
        typer.echo("stopping ...")
        stack.stop()


@app.command()
def asyncapi(
    output: Annotated[Path, typer.Option(help="Where to write the document.")] = Path(
        "docs/asyncapi.json"
    ),
    check: Annotated[bool, typer.Option(help="Exit 1 if the file is out of date.")] = False,
) -> None:
    """Generate the AsyncAPI contract of all topics."""
    from motcua.contract import asyncapi_json  # noqa: PLC0415

    text = asyncapi_json()
    if check:
        current = output.read_text("utf-8") if output.exists() else ""
        if current != text:
            typer.echo(f"{output} is out of date: run `motcua asyncapi`", err=True)
            raise typer.Exit(1)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, "utf-8")
    output.chmod(0o644)  # the published contract, not private state (the umask is 077)
    typer.echo(f"wrote {output}")


def _settings() -> Settings:
    """The settings, or a clean exit naming each wrong or missing one (values unshown)."""
    try:
        return get_settings()
    except ValidationError as exc:
        for error in exc.errors(include_url=False, include_input=False):
            where = ".".join(str(p) for p in error["loc"])
            typer.echo(f"{where}: {error['msg']}" if where else error["msg"], err=True)
        raise typer.Exit(2) from None


def _is_free(port: int) -> bool:
    import socket  # noqa: PLC0415

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
