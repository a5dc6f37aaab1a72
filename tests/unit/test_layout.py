"""The shape of the services, read from their source: where SQL may be written, and which
code may import which.

- Every SQL statement of a service is in a store module (``store.py``, or ``store.py`` of
  one of its packages): no other module of ``services/`` builds a statement (imports
  ``select``, ``insert``, ``update``, ``delete`` or ``text`` from SQLAlchemy or SQLModel)
  or runs one (``.exec(...)``, ``.execute(...)``). Migrations are schema, not queries.
- No service imports another, and ``shared/`` imports no service.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ROOT / "services"
STATEMENT_BUILDERS = {"select", "insert", "update", "delete", "text"}
RUNNERS = {"exec", "execute"}


def modules(under: Path) -> Iterator[Path]:
    yield from sorted(p for p in under.rglob("*.py") if "migrations" not in p.parts)


def is_store(path: Path) -> bool:
    return path.name == "store.py" or "store" in path.relative_to(SERVICES).parts[:-1]


def sql_in(path: Path) -> list[str]:
    """Where ``path`` builds or runs a statement, as ``line: what``."""
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in {
            "sqlalchemy",
            "sqlmodel",
        }:
            found += [
                f"{node.lineno}: imports {a.name} from {node.module}"
                for a in node.names
                if a.name in STATEMENT_BUILDERS
            ]
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in RUNNERS
        ):
            found.append(f"{node.lineno}: calls .{node.func.attr}(...)")
    return found


def imported(path: Path) -> set[str]:
    """The top two levels of every module ``path`` imports (``services.intake``, ...)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(".".join(a.name.split(".")[:2]) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(".".join(node.module.split(".")[:2]))
    return names


def test_the_check_sees_sql(tmp_path: Path) -> None:
    sample = tmp_path / "app.py"
    sample.write_text(
        "from sqlmodel import col, select\nasync def f(s):\n    await s.exec(select(1))\n"
    )
    assert sql_in(sample) == ["1: imports select from sqlmodel", "3: calls .exec(...)"]


@pytest.mark.parametrize(
    "path",
    [p for p in modules(SERVICES) if not is_store(p)],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_no_sql_outside_store_modules(path: Path) -> None:
    assert sql_in(path) == [], f"move these statements into the service's store module: {path}"


def test_no_service_imports_another_and_shared_none() -> None:
    services = {p.name for p in SERVICES.iterdir() if (p / "__init__.py").exists()}
    crossings: list[str] = []
    for service in services:
        for path in modules(SERVICES / service):
            others = {f"services.{s}" for s in services - {service}}
            crossings += [f"{path.relative_to(ROOT)} imports {n}" for n in imported(path) & others]
    for path in modules(ROOT / "shared"):
        crossings += [
            f"{path.relative_to(ROOT)} imports {n}"
            for n in imported(path)
            if n.startswith("services")
        ]
    assert crossings == []
