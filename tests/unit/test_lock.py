"""The lock files agree with pyproject.toml and pin every package with its hashes.

`make lock` writes requirements-dev.lock (what `make up` and `make test` install) and
requirements.lock (what the image installs). A pin changed in pyproject.toml without
`make lock` fails here, with no network; so does the audit's reading of pip-audit.
"""

import importlib.util
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
LOCK = ROOT / "requirements.lock"
DEV_LOCK = ROOT / "requirements-dev.lock"
RELOCK = "pyproject.toml and the locks disagree: run `make lock`"
# uv's annotation on a package that pyproject.toml asks for by name.
DIRECT = f"{PYPROJECT['project']['name']} (pyproject.toml)"


@dataclass
class Entry:
    """One requirement of a lock: its `name==version ; marker` line, the `--hash` lines
    after it and the `# via` comments under them."""

    requirement: Requirement
    hashes: list[str] = field(default_factory=list)
    annotation: str = ""

    @property
    def name(self) -> str:
        return canonicalize_name(self.requirement.name)

    @property
    def pin(self) -> str | None:
        return pinned(self.requirement)


def pinned(requirement: Requirement) -> str | None:
    """The version of a `name==version` requirement; None for anything looser."""
    specifiers = list(requirement.specifier)
    if requirement.url or len(specifiers) != 1 or specifiers[0].operator != "==":
        return None
    return specifiers[0].version


def read_lock(path: Path) -> list[Entry]:
    entries: list[Entry] = []
    for line in path.read_text().splitlines():
        body = line.strip().removesuffix("\\").strip()
        if not body or line.startswith("#"):  # blank, or the header uv writes
            continue
        if body.startswith("#"):
            entries[-1].annotation += body + "\n"
        elif body.startswith("--hash="):
            entries[-1].hashes.append(body)
        else:  # anything but a requirement (an option, a URL) fails to parse here
            entries.append(Entry(Requirement(body)))
    return entries


def by_name(entries: list[Entry]) -> dict[str, set[str | None]]:
    """Versions per package (a universal lock may list one package once per marker)."""
    versions: dict[str, set[str | None]] = {}
    for entry in entries:
        versions.setdefault(entry.name, set()).add(entry.pin)
    return versions


RUNTIME = [Requirement(r) for r in PYPROJECT["project"]["dependencies"]]
DEV = [Requirement(r) for r in PYPROJECT["project"]["optional-dependencies"]["dev"]]
BUILD = [Requirement(r) for r in PYPROJECT["build-system"]["requires"]]
LOCKS = {LOCK.name: (LOCK, RUNTIME), DEV_LOCK.name: (DEV_LOCK, RUNTIME + DEV)}


@pytest.mark.parametrize("lock", LOCKS)
def test_every_entry_is_pinned_with_sha256_hashes(lock: str) -> None:
    entries = read_lock(LOCKS[lock][0])
    assert len(entries) > 20
    unpinned = [str(e.requirement) for e in entries if e.pin is None]
    assert not unpinned, f"{lock}: not pinned with ==: {unpinned}"
    unhashed = [e.name for e in entries if not e.hashes]
    assert not unhashed, f"{lock}: no --hash for {unhashed}"
    other = [
        h
        for e in entries
        for h in e.hashes
        if not (h.startswith("--hash=sha256:") and len(h) == len("--hash=sha256:") + 64)
    ]
    assert not other, f"{lock}: hashes other than sha256: {other}"


def test_pyproject_pins_every_direct_dependency() -> None:
    loose = [str(r) for r in RUNTIME + DEV if pinned(r) is None]
    assert not loose, f"pin these with ==: {loose}"


@pytest.mark.parametrize("lock", LOCKS)
def test_the_lock_pins_what_pyproject_pins(lock: str) -> None:
    path, direct = LOCKS[lock]
    versions = by_name(read_lock(path))
    wrong = {
        r.name: (pinned(r), sorted(map(str, versions.get(canonicalize_name(r.name), []))))
        for r in direct
        if versions.get(canonicalize_name(r.name)) != {pinned(r)}
    }
    assert not wrong, f"{RELOCK}; pyproject.toml's pin and {lock}'s: {wrong}"


@pytest.mark.parametrize("lock", LOCKS)
def test_the_lock_asks_for_nothing_that_pyproject_dropped(lock: str) -> None:
    path, direct = LOCKS[lock]
    wanted = {canonicalize_name(r.name) for r in direct}
    locked_as_direct = {e.name for e in read_lock(path) if DIRECT in e.annotation}
    assert locked_as_direct == wanted, (
        f"{RELOCK}; only in {lock}: {sorted(locked_as_direct - wanted)}, "
        f"only in pyproject.toml: {sorted(wanted - locked_as_direct)}"
    )


@pytest.mark.parametrize("lock", LOCKS)
def test_the_build_backend_is_locked(lock: str) -> None:
    """motcua is installed with --no-build-isolation, from the lock's setuptools."""
    versions = by_name(read_lock(LOCKS[lock][0]))
    for requirement in BUILD:
        locked = versions.get(canonicalize_name(requirement.name), set())
        assert locked, f"{RELOCK}; {requirement} is not in {lock}"
        assert all(v is not None and requirement.specifier.contains(v) for v in locked), (
            f"{RELOCK}; {lock} has {requirement.name} {locked}, pyproject.toml needs {requirement}"
        )


def test_the_image_installs_what_the_tests_ran_on() -> None:
    """Every package of requirements.lock has the version and the hashes it has in
    requirements-dev.lock: the image runs the releases the suite passed with."""
    dev = {(e.name, e.pin, str(e.requirement.marker)): e.hashes for e in read_lock(DEV_LOCK)}
    differ = [
        str(e.requirement)
        for e in read_lock(LOCK)
        if dev.get((e.name, e.pin, str(e.requirement.marker))) != e.hashes
    ]
    assert not differ, f"{RELOCK}; not in requirements-dev.lock as in requirements.lock: {differ}"


# -- deploy/audit_lock.py: what CI makes of pip-audit's report ------------------------


def audit_lock() -> ModuleType:
    spec = importlib.util.spec_from_file_location("audit_lock", ROOT / "deploy/audit_lock.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_known_vulnerability_fails_with_its_report() -> None:
    report = {
        "dependencies": [
            {"name": "jinja2", "version": "3.1.4", "vulns": [
                {"id": "GHSA-q2x7-8rv6-6q7h", "fix_versions": ["3.1.5"],
                 "aliases": ["CVE-2024-56201"], "description": "sandbox breakout"},
            ]},
            {"name": "httpx", "version": "0.28.1", "vulns": []},
        ],
        "fixes": [],
    }  # fmt: skip
    status, lines = audit_lock().verdict("requirements-dev.lock", report)
    assert status == 1
    assert "jinja2 3.1.4: GHSA-q2x7-8rv6-6q7h (CVE-2024-56201), fixed in 3.1.5" in "\n".join(lines)


def test_a_service_that_knows_no_package_is_a_skip_not_a_pass() -> None:
    report = {
        "dependencies": [
            {"name": n, "skip_reason": f"Dependency not found and could not be audited: {n}"}
            for n in ("httpx", "jinja2")
        ],
    }
    status, lines = audit_lock().verdict("requirements-dev.lock", report)
    assert status == 0
    assert len(lines) == 1
    assert lines[0].startswith("pip-audit: skipped")


def test_a_clean_report_passes_and_names_what_it_could_not_audit() -> None:
    report = {
        "dependencies": [
            {"name": "httpx", "version": "0.28.1", "vulns": []},
            {"name": "jinja2", "skip_reason": "not found"},
        ],
    }
    status, lines = audit_lock().verdict("requirements-dev.lock", report)
    assert status == 0
    assert lines == [
        "pip-audit: no known vulnerabilities in 1 packages of requirements-dev.lock",
        "  not audited: jinja2: not found",
    ]


def test_an_unreachable_service_is_a_skip_and_another_error_is_not() -> None:
    module = audit_lock()
    refused = "Traceback …\nrequests.exceptions.ConnectionError: Max retries exceeded\n"
    line = module.unreachable("requirements-dev.lock", refused)
    assert line is not None
    assert line.startswith("pip-audit: skipped")
    assert module.unreachable("requirements-dev.lock", "invalid requirements input") is None
