"""Development sink: each message becomes one JSON file named by its key."""

from __future__ import annotations

import asyncio
import os
from dataclasses import asdict
from pathlib import Path

import orjson

from services.notify.channels.base import Outgoing


class FileSink:
    """Writes ``<dir>/<key>.json`` atomically; sending the same key again rewrites the
    same file, so a resend after a crash is not a second message."""

    name = "file"
    resend_safe = True
    reaches_citizen = False

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)

    async def send(self, message: Outgoing) -> str | None:
        """Write the message file (temporary file, then an atomic rename)."""
        await asyncio.to_thread(self._write, message)
        return None

    def _write(self, message: Outgoing) -> None:
        name = message.key.replace(":", "_").replace("/", "_")
        final = self.directory / f"{name}.json"
        tmp = final.with_suffix(".json.tmp")
        # a citizen's contact and text: mode 600 whatever the process's umask
        descriptor = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(orjson.dumps(asdict(message)))
        os.replace(tmp, final)
