"""``motcua notify``: toggles and opt-outs reach notify's database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from motcua import notify_cli
from shared.settings import get_settings


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


def test_toggle_then_list(cli: typer.Typer) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["notify", "toggle", "received", "--off", "--unit", "U1"])
    assert result.exit_code == 0, result.output
    listed = runner.invoke(cli, ["notify", "toggles"])
    assert listed.exit_code == 0
    assert listed.output.split() == ["received", "off", "*", "U1"]


def test_opt_out_needs_a_target_and_stores_no_contact(cli: typer.Typer, tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["notify", "opt-out"]).exit_code == 2
    result = runner.invoke(cli, ["notify", "opt-out", "--contact", "0912345678"])
    assert result.exit_code == 0, result.output
    assert "0 queued" in result.output
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("notify.db*"))
    assert b"opt_out" in stored
    assert b"0912345678" not in stored


def test_opt_out_undo_withdraws_what_was_recorded(cli: typer.Typer) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["notify", "opt-out", "--contact", "+84912345678"]).exit_code == 0
    undone = runner.invoke(cli, ["notify", "opt-out", "--contact", "0912345678", "--undo"])
    assert undone.exit_code == 0, undone.output
    assert "1 recorded target(s) removed" in undone.output
    again = runner.invoke(cli, ["notify", "opt-out", "--contact", "0912345678", "--undo"])
    assert "0 recorded target(s) removed" in again.output
