"""The fast paths give what the plain fold gives.

The tracker memoises the folds of clocks without actions (per exact terms), a rebuild
inserts the clocks it sees first with a plain ``INSERT``, and the clock rows bind their
instants through a memo. On a varied set (supplements under both rules, payments, stops,
extensions, withdrawals, chains; receptions on a Friday evening, at the weekend, in the
lunch break, before Tết; the same terms under many dossiers, and the same instant and
limit written differently) the rebuilt tables and outbox equal those of the consumer
path without them, and every stored instant equals the domain's ``Clock`` methods.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import text
from sqlalchemy.dialects import postgresql, sqlite

from services.sla import process as sla_process
from services.sla import store
from services.sla.app import Tracker, core
from services.sla.app.core import entries_of, terms_of
from services.sla.domain import Folded, replay
from services.sla.rebuild import rebuild
from shared.db import AwareDateTime, Database
from shared.events import (
    ChainStep,
    Channel,
    DossierAction,
    DossierActionRecorded,
    DossierReceived,
    DossierRouted,
    Envelope,
    TimeLimit,
    decode,
)
from shared.settings import Settings
from tests.component.test_sla_tracker import VirtualClock, vn

RECEPTIONS = [
    "2026-02-13 16:00",  # the Friday before Tết 2026
    "2026-02-12 10:15",  # a day before, the time limit runs over Tết
    "2026-06-05 17:30",  # Friday evening
    "2026-06-06 09:00",  # Saturday
    "2026-06-07 20:00",  # Sunday evening
    "2026-06-08 12:10",  # lunch break
    "2026-06-08 07:30",  # the first minute
    "2026-06-09 15:20",  # after the same-day cut-off
]
LIMITS = [
    (Decimal(2), "working_days"),
    (Decimal("2.0"), "working_days"),  # equal to 2, written otherwise
    (Decimal("0.5"), "working_days"),
    (Decimal(4), "working_hours"),
    (Decimal(3), "calendar_days"),
    (Decimal(0), "same_day"),
    (Decimal(0), "none"),
]
A = DossierAction
STORIES: list[list[tuple[A, int, dict[str, object]]]] = [
    [],
    [],  # most dossiers have no action yet: the memoised case
    [(A.REQUEST_SUPPLEMENT, 3, {"reason": "thiếu"}), (A.SUBMIT_SUPPLEMENT, 30, {})],
    [(A.REQUEST_PAYMENT, 1, {}), (A.REQUEST_SUPPLEMENT, 2, {}), (A.PAYMENT_RECEIVED, 5, {})],
    [(A.STOP, 2, {}), (A.RESUME, 50, {}), (A.RESOLVE, 60, {})],
    [(A.EXTEND, 4, {"new_due_at": "2026-12-01 17:00"}), (A.RETURN_RESULT, 200, {})],
    [(A.WITHDRAW, 1, {})],
    [(A.TRANSFER, 3, {"office": "POLICE"}), (A.RESOLVE, 9, {})],
]


def _received(code: str, at: datetime, limit: tuple[Decimal, str], rule: str) -> Envelope:
    value, unit = limit
    return Envelope.wrap(
        DossierReceived(
            procedure_code="2.000635",
            channel=Channel.COUNTER,
            receiving_unit="000.00.00.H56",
            received_at=at,
            due_at=None,
            field="Hộ tịch",
            time_limit=TimeLimit(value=value, unit=unit),
            supplement_rule="restart" if rule == "restart" else "pause",
            catalogue_version=1,
        ),
        occurred_at=at,
        source="test",
        dossier_code=code,
    )


def _routed(code: str, at: datetime) -> Envelope:
    steps = [ChainStep(office="UNIT", hours=Decimal(4)), ChainStep(office="POLICE", hours=8)]
    return Envelope.wrap(
        DossierRouted(
            procedure_code="2.000635",
            office="UNIT",
            field="Hộ tịch",
            rule="test",
            catalogue_version=1,
            steps=steps,
        ),
        occurred_at=at,
        source="routing",
        dossier_code=code,
    )


def _action(code: str, sequence: int, what: A, at: datetime, extra: dict[str, object]) -> Envelope:
    values = {k: vn(str(v)) if k == "new_due_at" else v for k, v in extra.items()}
    return Envelope.wrap(
        DossierActionRecorded.model_validate(
            {
                "action": what,
                "sequence": sequence,
                "at": at,
                "status": what.value,
                "national_status": 4,
                **values,
            }
        ),
        occurred_at=at,
        source="test",
        dossier_code=code,
    )


def facts() -> list[Envelope]:
    """Dossiers over receptions, limits, rules and stories, the same terms repeated;
    every event through the wire form (decoded as a topic reader decodes it)."""
    events: list[Envelope] = []
    index = 0
    for repeat in range(3):
        for r, reception in enumerate(RECEPTIONS):
            for limit_index, limit in enumerate(LIMITS):
                code = f"000.00.00.H56-2606{r:02d}-{index:04d}"
                index += 1
                at = vn(reception)
                if repeat == 1:
                    at = at.astimezone(UTC)  # the same instant, in another zone
                rule = "restart" if (r + limit_index) % 2 else "pause"
                story = STORIES[(r + limit_index + repeat) % len(STORIES)]
                events.append(_received(code, at, limit, rule))
                if (r + limit_index) % 3 == 0:
                    events.append(_routed(code, at))
                for sequence, (what, hours, extra) in enumerate(story, start=1):
                    events.append(_action(code, sequence, what, at + timedelta(hours=hours), extra))
    return [decode(e.encode()) for e in events]


async def in_parts(events: Sequence[Envelope], size: int) -> AsyncIterator[list[Envelope]]:
    for start in range(0, len(events), size):
        yield list(events[start : start + size])


async def stored(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """The tables as stored (SQLite's text, no type processing), and the outbox decoded
    without its fresh event ids, in order."""
    async with db.sessions() as session:
        conn = await session.connection()
        clocks = await conn.execute(text("SELECT * FROM tracked_dossier ORDER BY code"))
        names = list(clocks.keys())
        rows = [
            tuple(v for n, v in zip(names, row, strict=True) if n != "version") for row in clocks
        ]
        flags = await conn.execute(text("SELECT code, kind, step FROM sla_flag ORDER BY 1, 2, 3"))
        outbox = await conn.execute(text("SELECT key, value FROM outbox ORDER BY id"))
        events = [(key, decode(value).model_dump(exclude={"event_id"})) for key, value in outbox]
    return {
        "clocks": rows,
        "flags": [tuple(f) for f in flags],
        "outbox": events,
    }


async def rebuilder(var_dir: Path, clock: VirtualClock, fold_memo: int) -> Tracker:
    """The tracker ``motcua sla rebuild`` uses, keeping ``fold_memo`` folds."""
    settings = Settings(var_dir=var_dir)
    tracker = sla_process.standalone(settings, clock=clock, fold_memo=fold_memo)
    await sla_process.prepare(tracker, settings)
    return tracker


async def test_the_fast_rebuild_equals_the_plain_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = facts()
    clock = VirtualClock(vn("2026-06-01 10:00"))
    fast = await rebuilder(tmp_path / "fast", clock, core.FOLD_MEMO_SIZE)
    report = await rebuild(fast, in_parts(events, 7), in_parts([], 1), batch=11)
    assert report.events_applied == len(events)

    # the path before the fast ones: every fold computed, every clock upserted through
    # the table's own types
    monkeypatch.setattr(store, "_CLOCKS_WRITE", store.CLOCKS)
    monkeypatch.setattr(store, "insert_clocks", store.save_clocks)
    plain = await rebuilder(tmp_path / "plain", clock, 0)
    await rebuild(plain, in_parts(events, 7), in_parts([], 1), batch=11)

    fast_state, plain_state = await stored(fast.db), await stored(plain.db)
    assert len(fast_state["clocks"]) == report.clocks == len(RECEPTIONS) * len(LIMITS) * 3
    assert fast_state == plain_state

    async with fast.db.sessions() as session:
        codes = [row[0] for row in fast_state["clocks"]]
        clocks, ledgers, emitted = await store.load(session, codes)
    tracker = fast
    for code, row in clocks.items():
        terms = terms_of(row)
        assert terms is not None
        reference = replay(terms, entries_of(ledgers[code]), tracker.calendar, tracker.policy)
        assert row.due_at == reference.due_at
        assert row.due_soon_at == reference.due_soon_at(tracker.policy)
        assert row.next_deadline == reference.next_deadline(tracker.policy, emitted[code])
    for tracker in (fast, plain):
        await tracker.db.dispose()


DIALECTS = [sqlite.dialect(), postgresql.dialect()]  # type: ignore[no-untyped-call]


@pytest.mark.parametrize("dialect", DIALECTS, ids=["sqlite", "postgresql"])
def test_memoised_bind_values_equal_the_plain_ones(dialect: Any) -> None:
    write = store._CLOCKS_WRITE.c  # the write table's own types
    plain, memo = AwareDateTime().bind_processor(dialect), write.due_at.type.bind_processor(dialect)
    instants = [vn("2026-02-13 16:00"), vn("2026-02-13 16:00").astimezone(UTC), None]
    instants += [vn("2026-06-05 17:30") + timedelta(microseconds=n) for n in range(3)]
    for value in instants * 2:
        expected = value if plain is None else plain(value)
        assert (value if memo is None else memo(value)) == expected
    if memo is not None:
        with pytest.raises(ValueError, match="naive"):
            memo(datetime(2026, 6, 1, 8, 0))  # noqa: DTZ001 - refused, as by AwareDateTime
    plain_json = store.CLOCKS.c.steps.type.bind_processor(dialect)
    memo_json = write.steps.type.bind_processor(dialect)
    for steps in (None, [["UNIT", "4"]], None, {"due_at": None}):
        expected = steps if plain_json is None else plain_json(steps)
        assert (steps if memo_json is None else memo_json(steps)) == expected


def test_a_memo_of_terms_that_seldom_repeat_is_dropped() -> None:
    computed: list[core.TermsKey] = []

    def fold_terms(key: core.TermsKey) -> Folded:
        computed.append(key)
        return cast(Folded, ("folded", key))

    keys = [cast(core.TermsKey, ("terms", i)) for i in range(30)]
    distinct = core.FoldMemo(fold_terms, 100, probe=10, min_hits=0.1)
    assert [distinct(k) for k in keys] == [("folded", k) for k in keys]
    assert not distinct.active  # 0 of its first 10 folds were repeats
    assert len(computed) == 30

    computed.clear()
    repeating = core.FoldMemo(fold_terms, 100, probe=10, min_hits=0.1)
    answers = [repeating(keys[i % 3]) for i in range(30)]
    assert answers == [("folded", keys[i % 3]) for i in range(30)]
    assert repeating.active
    assert computed == keys[:3]
