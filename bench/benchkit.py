"""What the benches share (each bench imports it as a sibling: `python bench/<name>.py`
puts this folder first on the path): the dossier they post, percentiles, the machine."""

from __future__ import annotations

import os
import platform
from pathlib import Path

DOSSIER = {
    "procedure_code": "2.000635",
    "channel": "counter",
    "receiving_unit": "000.00.00.H56",
    "applicant": {"name": "Nguyễn Văn A", "phone": "0912345678"},
    "documents": ["Tờ khai"],
}
"""A same-day dossier at the counter (cấp bản sao trích lục hộ tịch), as a clerk posts it."""


def dossier(n: int) -> dict[str, object]:
    """``DOSSIER`` with the ``n``-th applicant's own phone: notify sends one recipient's
    messages one after another, so one phone for every dossier would measure that queue
    rather than the stack."""
    return {**DOSSIER, "applicant": {"name": "Nguyễn Văn A", "phone": f"09{n % 10**8:08d}"}}


def percentile(sorted_values: list[float], fraction: float) -> float:
    """The value below which ``fraction`` of the sorted values fall (nearest rank)."""
    index = max(0, min(len(sorted_values) - 1, round(fraction * len(sorted_values)) - 1))
    return sorted_values[index]


def machine() -> str:
    """CPUs, their model and Python's version, for the results' header."""
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "unknown CPU",
    )
    return f"{os.cpu_count()} CPUs, {cpu}, Python {platform.python_version()}"
