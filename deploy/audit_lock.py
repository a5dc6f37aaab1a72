"""Audit a hashed lock file with pip-audit, telling a vulnerability from a silent service.

pip-audit exits 1 both when it finds a vulnerability and when it cannot reach its
advisory service; and where the service answers "not found" for every release (a mirror
that serves packages but not advisories), it says "No known vulnerabilities found"
having audited nothing. This runs it once, on the lock alone (`--disable-pip`: nothing
installed is looked at), and decides:

- a known vulnerability: print the report, exit 1;
- the service did not answer, or knew not one package: print one line starting
  "pip-audit: skipped", exit 0;
- otherwise: print how many packages were audited, exit 0.

Usage: python deploy/audit_lock.py LOCK [more pip-audit options, e.g. -s osv]
"""

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

# What pip-audit's traceback or error line says when its service is out of reach or
# answers with something that is not an advisory.
UNREACHABLE = (
    "ConnectionError",
    "Timeout",
    "ServiceError",
    "HTTPError",
    "JSONDecodeError",
    "Could not connect",
    "Max retries exceeded",
    "NameResolutionError",
)


def verdict(lock: str, report: dict[str, Any]) -> tuple[int, list[str]]:
    """Exit status and lines to print for pip-audit's JSON report on `lock`.

    Fails only on a known vulnerability; passes with a skip line when not one package
    could be audited."""
    dependencies = report.get("dependencies", [])
    audited = [d for d in dependencies if "skip_reason" not in d]
    skipped = [d for d in dependencies if "skip_reason" in d]
    vulnerable = [d for d in audited if d.get("vulns")]
    if vulnerable:
        count = sum(len(d["vulns"]) for d in vulnerable)
        noun = "vulnerability" if count == 1 else "vulnerabilities"
        lines = [f"pip-audit: {count} known {noun} in {lock}:"]
        for dep in vulnerable:
            for vuln in dep["vulns"]:
                aliases = ", ".join(vuln.get("aliases", []))
                fixed = ", ".join(vuln.get("fix_versions", [])) or "no fixed release"
                lines.append(
                    f"  {dep['name']} {dep['version']}: {vuln['id']}"
                    + (f" ({aliases})" if aliases else "")
                    + f", fixed in {fixed}"
                )
                if vuln.get("description"):
                    lines.append(f"    {vuln['description']}")
        return 1, lines
    if not audited:
        reason = skipped[0]["skip_reason"] if skipped else "no package in the report"
        return 0, [
            f"pip-audit: skipped, the advisory service knew none of the {len(skipped)} "
            f"packages of {lock} (e.g. {reason})"
        ]
    lines = [f"pip-audit: no known vulnerabilities in {len(audited)} packages of {lock}"]
    lines += [f"  not audited: {d['name']}: {d['skip_reason']}" for d in skipped]
    return 0, lines


def unreachable(lock: str, stderr: str) -> str | None:
    """The skip line when pip-audit's error output says its service was out of reach."""
    if not any(marker in stderr for marker in UNREACHABLE):
        return None
    last = stderr.strip().splitlines()[-1] if stderr.strip() else ""
    return (
        f"pip-audit: skipped, the advisory service did not answer ({last[:200]}); "
        f"{lock} was not audited"
    )


def main(argv: list[str]) -> int:
    lock, *options = argv
    with tempfile.TemporaryDirectory() as tmp:
        output = Path(tmp) / "report.json"
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip_audit",
                "--requirement",
                lock,
                "--require-hashes",
                "--disable-pip",
                "--progress-spinner",
                "off",
                "--format",
                "json",
                "--output",
                str(output),
                *options,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        text = output.read_text() if output.exists() else ""
        report = json.loads(text) if text.strip() else None
    if report is not None:
        status, lines = verdict(lock, report)
    elif result.returncode == 0:
        status, lines = 0, [f"pip-audit: no known vulnerabilities in {lock}"]
    elif (line := unreachable(lock, result.stderr)) is not None:
        status, lines = 0, [line]
    else:
        status, lines = result.returncode, [result.stderr.rstrip(), f"pip-audit failed on {lock}"]
    sys.stdout.write("\n".join(lines) + "\n")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
