"""``motcua keys`` and the development admin key, against a real SQLite file."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from motcua.keys_cli import DEV_UNIT, ensure_dev_admin_key, ensure_dev_desk_keys, register
from services.intake.keys import is_live, list_keys
from shared.auth import Role, hash_secret, parse_key
from shared.settings import Settings, get_settings


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("MOTCUA_VAR_DIR", str(tmp_path))
    get_settings.cache_clear()
    return get_settings()


def cli() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def test_create_list_revoke(settings: Settings) -> None:
    runner = CliRunner()
    created = runner.invoke(
        cli(), ["keys", "create", "--role", "counter", "--unit", "000.00.00.H56", "--label", "q1"]
    )
    assert created.exit_code == 0, created.output
    token = created.output.strip()
    parsed = parse_key(token)
    assert parsed is not None
    assert asyncio.run(is_live(settings, token))
    listed = runner.invoke(cli(), ["keys", "list"])
    assert parsed[0] in listed.output
    assert "counter\t000.00.00.H56\tq1" in listed.output
    assert token not in listed.output
    assert hash_secret(parsed[1]) not in listed.output
    assert (settings.var_dir / "intake.db").read_bytes().find(parsed[1].encode()) == -1
    revoked = runner.invoke(cli(), ["keys", "revoke", parsed[0]])
    assert revoked.exit_code == 0
    assert not asyncio.run(is_live(settings, token))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["create", "--role", "counter", "--unit", "H56"], "unit"),
        (["create", "--role", "counter", "--unit", "*"], "unit"),
        (["create", "--role", "boss", "--unit", "000.00.00.H56"], "role"),
        (["revoke", "000000000000"], "no key"),
    ],
)
def test_bad_arguments_fail_cleanly(settings: Settings, args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli(), ["keys", *args])
    assert result.exit_code == 2
    assert message in result.output


def test_dev_admin_key_is_written_owner_only_and_reused(settings: Settings) -> None:
    first = ensure_dev_admin_key(settings)
    path = settings.var_dir / "dev-admin.key"
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.read_text().strip() == first
    assert ensure_dev_admin_key(settings) == first
    path.write_text("mc_000000000000_" + "A" * 43)
    replaced = ensure_dev_admin_key(settings)
    assert replaced != first
    assert asyncio.run(is_live(settings, replaced))


def test_dev_desk_keys_have_their_roles_and_unit(settings: Settings) -> None:
    keys = ensure_dev_desk_keys(settings)
    assert set(keys) == {Role.COUNTER, Role.KIOSK, Role.OFFICE}
    for role, token in keys.items():
        path = settings.var_dir / f"dev-{role.value}.key"
        assert path.stat().st_mode & 0o777 == 0o600
        assert path.read_text().strip() == token
        assert asyncio.run(is_live(settings, token))
    assert ensure_dev_desk_keys(settings) == keys  # reused while live
    listed = {(k.role, k.unit) for k in asyncio.run(list_keys(settings))}
    assert {(r.value, DEV_UNIT) for r in keys} <= listed
