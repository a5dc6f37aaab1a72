"""A stack that fails to start leaves no process behind (a caller that forgets ``stop``
after the error must not leave a broker and services loading the machine)."""

from __future__ import annotations

from pathlib import Path

import pytest

from motcua.stack import Stack

pytestmark = pytest.mark.integration


def test_a_failed_start_stops_what_it_started(tmp_path: Path) -> None:
    stack = Stack(tmp_path / "var", env={"MOTCUA_CLOCK_START": "not a time"})
    with pytest.raises(RuntimeError, match="exited with 2"):
        stack.start(timeout=60)
    alive = [n for n, s in stack.services.items() if s.process and s.process.poll() is None]
    assert alive == []
    assert stack.broker is not None
    assert stack.broker.process is None or stack.broker.process.poll() is not None
