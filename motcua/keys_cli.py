"""``motcua keys create|list|revoke``: API keys in intake's database, and the development
admin key that ``motcua up`` prints, and the secret that signs the key events locally.

A key is printed once, when it is created; only its hash is stored. Every bad argument
prints one line on stderr and exits with code 2.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, NoReturn

import typer

from services.intake.keys import (
    KeyCommandError,
    create_key,
    ensure_dev_admin_key_async,
    ensure_dev_key_async,
    list_keys,
    revoke_key,
)
from shared.auth import Role
from shared.settings import Settings, get_settings
from shared.signing import signing_secrets

__all__ = [
    "DEV_UNIT",
    "ensure_dev_admin_key",
    "ensure_dev_desk_keys",
    "ensure_dev_signing_secret",
    "register",
]


def ensure_dev_signing_secret(settings: Settings) -> str:
    """The secret(s) that sign the key events, as ``MOTCUA_KEYS_SIGNING_SECRET`` holds them:
    the configured one, else the development secret generated once in
    ``<var_dir>/keys-signing.secret`` (mode 600), which ``motcua keys`` run before the
    stack uses too. Give it to every process of the stack; never print it."""
    return signing_secrets(settings)


def ensure_dev_admin_key(settings: Settings) -> str:
    """The development admin key, created if needed, in ``<var_dir>/dev-admin.key``
    (mode 600). Call it before the services start, outside any event loop."""
    return asyncio.run(ensure_dev_admin_key_async(settings))


DEV_UNIT = "000.00.00.H56"
"""The unit of the development desk keys (the one the README's examples use)."""


def ensure_dev_desk_keys(settings: Settings) -> dict[Role, str]:
    """Development keys of a counter, a kiosk and an office of ``DEV_UNIT``, so the whole
    lifecycle can be driven with the roles it needs (files ``dev-<role>.key``, mode 600).
    Call it outside any event loop."""

    async def make() -> dict[Role, str]:
        return {
            role: await ensure_dev_key_async(settings, role, DEV_UNIT)
            for role in (Role.COUNTER, Role.KIOSK, Role.OFFICE)
        }

    return asyncio.run(make())


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def register(app: typer.Typer) -> None:
    """Add the ``keys`` command group to ``app``."""
    keys = typer.Typer(help="API keys: create, list, revoke.", no_args_is_help=True)

    @keys.command("create")
    def create(
        role: Annotated[Role, typer.Option(help="What the key may do.")],
        unit: Annotated[str, typer.Option(help="Agency code of its unit; * for admin keys.")],
        label: Annotated[str, typer.Option(help="Who or what holds it.")] = "",
    ) -> None:
        """Create a key and print it (it is shown only this once)."""
        try:
            token = asyncio.run(create_key(get_settings(), role, unit, label))
        except KeyCommandError as error:
            _fail(str(error))
        typer.echo(token)

    @keys.command("list")
    def list_() -> None:
        """Every key: id, role, unit, label, created, revoked (never the key itself)."""
        for key in asyncio.run(list_keys(get_settings())):
            revoked = key.revoked_at.isoformat() if key.revoked_at else "-"
            typer.echo(
                f"{key.key_id}\t{key.role}\t{key.unit}\t{key.label or '-'}\t"
                f"{key.created_at.isoformat()}\t{revoked}"
            )

    @keys.command("revoke")
    def revoke(key_id: Annotated[str, typer.Argument(help="The key's id (from `list`).")]) -> None:
        """Revoke a key: it is refused from the next request on."""
        try:
            asyncio.run(revoke_key(get_settings(), key_id))
        except KeyCommandError as error:
            _fail(str(error))
        typer.echo(f"revoked {key_id}")

    app.add_typer(keys, name="keys")
