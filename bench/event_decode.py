"""Decoding events as a consumer does: ``decode`` then ``body`` once and three times, for a
``dossier.received`` envelope; prints microseconds per event (best of ``--repeat``).

Run: ``.venv/bin/python bench/event_decode.py [--count 20000] [--repeat 7]``. Single
process, no I/O: it measures validation and JSON parsing only.
"""

from __future__ import annotations

import argparse
import platform
import timeit
from datetime import datetime
from decimal import Decimal

from shared.calendar import VN_TZ
from shared.events import Channel, DossierReceived, Envelope, TimeLimit, decode

AT = datetime(2026, 12, 2, 9, 0, tzinfo=VN_TZ)


def raw_event() -> bytes:
    """A ``dossier.received`` as intake publishes it."""
    payload = DossierReceived(
        procedure_code="2.000635",
        channel=Channel.COUNTER,
        receiving_unit="000.00.00.H56",
        received_at=AT,
        due_at=AT,
        documents=["Tờ khai", "Bản sao giấy tờ tùy thân"],
        field="Hộ tịch",
        time_limit=TimeLimit(value=Decimal(1), unit="same_day"),
        supplement_rule="pause",
        catalogue_version=3,
    )
    return Envelope.wrap(
        payload, occurred_at=AT, source="intake", dossier_code="000.00.00.H56-261202-0001"
    ).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    raw = raw_event()

    def reads(n: int) -> None:
        envelope = decode(raw)
        for _ in range(n):
            envelope.body(DossierReceived)

    print(f"python {platform.python_version()}, {len(raw)} bytes per event")
    for n in (0, 1, 3):
        best = min(timeit.repeat(lambda n=n: reads(n), number=args.count, repeat=args.repeat))
        print(f"decode + {n} body(): {best / args.count * 1e6:.2f} µs per event")


if __name__ == "__main__":
    main()
