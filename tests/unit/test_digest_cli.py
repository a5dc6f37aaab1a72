"""``motcua notify heads`` and ``motcua notify digest`` reach notify's database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from motcua import notify_cli
from shared.settings import get_settings

UNIT = "000.00.00.H56"
EMAIL = "truong.phong@example.vn"


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[typer.Typer]:
    monkeypatch.setenv("MOTCUA_VAR_DIR", str(tmp_path))
    get_settings.cache_clear()
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """Test root."""

    notify_cli.register(app)
    yield app
    get_settings.cache_clear()


def test_heads_add_list_remove(cli: typer.Typer) -> None:
    runner = CliRunner()
    added = runner.invoke(
        cli, ["notify", "heads", "add", UNIT, "--email", EMAIL, "--name", "Lê Văn Trưởng"]
    )
    assert added.exit_code == 0, added.output
    assert EMAIL not in added.output
    listed = runner.invoke(cli, ["notify", "heads", "list"])
    assert listed.output.splitlines() == [f"{UNIT}\t{EMAIL}\tLê Văn Trưởng"]
    assert runner.invoke(cli, ["notify", "heads", "remove", UNIT]).exit_code == 0
    assert runner.invoke(cli, ["notify", "heads", "list"]).output == ""
    assert runner.invoke(cli, ["notify", "heads", "remove", UNIT]).exit_code == 1


def test_heads_add_refuses_what_is_not_an_address(cli: typer.Typer) -> None:
    result = CliRunner().invoke(
        cli, ["notify", "heads", "add", UNIT, "--email", "nobody", "--name", "A"]
    )
    assert result.exit_code == 2
    assert "not an address" in result.output
    assert CliRunner().invoke(cli, ["notify", "heads", "list"]).output == ""


def test_digest_by_hand_is_queued_once(cli: typer.Typer) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["notify", "digest", "--period", "March"]).exit_code == 2
    none = runner.invoke(cli, ["notify", "digest", "--period", "2026-10"])
    assert none.exit_code == 0, none.output
    assert none.output.endswith("0 digest(s) queued\n")
    runner.invoke(cli, ["notify", "heads", "add", UNIT, "--email", EMAIL, "--name", "A"])
    first = runner.invoke(cli, ["notify", "digest", "--period", "2026-10", "--unit", UNIT])
    assert first.output.splitlines() == [f"digest:{UNIT}:2026-10", "1 digest(s) queued"]
    again = runner.invoke(cli, ["notify", "digest", "--period", "2026-10"])
    assert again.output.splitlines() == ["0 digest(s) queued"]
