"""Everything motcua keeps under var_dir is private: files 600, folders 700."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path


def modes(root: Path) -> dict[str, int]:
    found = {".": stat.S_IMODE(root.stat().st_mode)}
    for folder, folders, files in os.walk(root):
        for name in [*folders, *files]:
            path = Path(folder) / name
            found[str(path.relative_to(root))] = stat.S_IMODE(path.stat().st_mode)
    return found


def test_a_motcua_command_leaves_var_dir_private(tmp_path: Path) -> None:
    var = tmp_path / "var"
    (var / "messages").mkdir(parents=True)
    (var / "messages").chmod(0o755)
    earlier = var / "messages" / "old.json"  # written before, under a looser umask
    earlier.write_text("{}")
    earlier.chmod(0o644)
    env = {**os.environ, "MOTCUA_VAR_DIR": str(var)}
    env.pop("MOTCUA_DATABASE_URL", None)
    for command in (
        ["keys", "create", "--role", "admin", "--unit", "*"],
        ["notify", "opt-out", "--contact", "0912345678"],
        ["calendar", "add", "2026-09-03", "off", "Nghỉ bù", "--source", "test"],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "motcua.cli", *command],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, (command, done.stderr)
    found = modes(var)
    assert {"intake.db", "notify.db", "notify-opt-out.secret"} <= set(found), found
    for name, mode in found.items():
        expected = 0o700 if (var / name).is_dir() else 0o600
        assert mode == expected, (name, oct(mode))
