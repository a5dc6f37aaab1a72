"""Operational failures are told from bad records, through every wrapper."""

from __future__ import annotations

import errno
import sqlite3

import asyncpg  # type: ignore[import-untyped]
import pytest
from aiokafka import errors as kafka_errors
from pydantic import BaseModel, ValidationError
from sqlalchemy import exc as sa_exc

from shared import retry
from shared.faults import is_transient
from shared.retry import backoff


class _Model(BaseModel):
    n: int


def _validation_error() -> ValidationError:
    try:
        _Model.model_validate({"n": "x"})
    except ValidationError as exc:
        return exc
    raise AssertionError


def _wrapped(orig: BaseException, kind: type[sa_exc.DBAPIError]) -> sa_exc.DBAPIError:
    return kind("INSERT INTO x VALUES (?)", {}, orig)


def _raised_from(cause: BaseException) -> RuntimeError:
    try:
        try:
            raise cause
        except BaseException as inner:
            msg = "applying a batch failed"
            raise RuntimeError(msg) from inner
    except RuntimeError as outer:
        return outer


@pytest.mark.parametrize(
    "exc",
    [
        _wrapped(sqlite3.OperationalError("database is locked"), sa_exc.OperationalError),
        _wrapped(sqlite3.OperationalError("database or disk is full"), sa_exc.OperationalError),
        OSError(errno.ENOSPC, "No space left on device"),
        ConnectionRefusedError(),
        TimeoutError(),
        _wrapped(asyncpg.exceptions.AdminShutdownError("terminating"), sa_exc.DBAPIError),
        _wrapped(asyncpg.exceptions.ConnectionDoesNotExistError("closed"), sa_exc.DBAPIError),
        _wrapped(asyncpg.exceptions.DiskFullError("disk full"), sa_exc.DBAPIError),
        _wrapped(asyncpg.exceptions.SerializationError("retry"), sa_exc.DBAPIError),
        sa_exc.TimeoutError("QueuePool limit reached"),
        kafka_errors.KafkaConnectionError(),
        kafka_errors.KafkaTimeoutError(),
        kafka_errors.RequestTimedOutError(),
        _raised_from(_wrapped(sqlite3.OperationalError("locked"), sa_exc.OperationalError)),
    ],
    ids=lambda e: type(e).__name__,
)
def test_operational_failures_are_transient(exc: BaseException) -> None:
    assert is_transient(exc)


@pytest.mark.parametrize(
    "exc",
    [
        ValueError("no office for procedure"),
        KeyError("office"),
        _validation_error(),
        _wrapped(sqlite3.IntegrityError("UNIQUE constraint failed"), sa_exc.IntegrityError),
        _wrapped(asyncpg.exceptions.UniqueViolationError("duplicate"), sa_exc.IntegrityError),
        _wrapped(asyncpg.exceptions.StringDataRightTruncationError("too long"), sa_exc.DBAPIError),
        kafka_errors.MessageSizeTooLargeError(),
        _raised_from(ValueError("bad payload")),
    ],
    ids=lambda e: type(e).__name__,
)
def test_bad_records_are_not_transient(exc: BaseException) -> None:
    assert not is_transient(exc)


def test_backoff_doubles_up_to_its_cap() -> None:
    assert [backoff(n, 0.5, 5.0) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    assert backoff(10_000, 0.5, 5.0) == 5.0


def test_a_stall_is_reported_until_it_clears_or_goes_quiet(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [100.0]
    monkeypatch.setattr(retry.time, "monotonic", lambda: now[0])
    stalls = retry.Stalls("sla", stale_after=35.0)
    locked = _wrapped(sqlite3.OperationalError("database is locked"), sa_exc.OperationalError)
    assert stalls.failed("motcua.dossier.lifecycle", locked) == 1
    assert stalls.failed("motcua.dossier.lifecycle", locked) == 2
    [line] = stalls.report()
    assert line.startswith("motcua.dossier.lifecycle: OperationalError since ")
    assert line.endswith(", 2 attempts")
    now[0] = 130.0  # within the longest backoff: still retrying
    assert len(stalls.report()) == 1
    stalls.cleared("motcua.dossier.lifecycle")
    assert stalls.report() == []
    stalls.failed("motcua.calendar", locked)
    now[0] = 200.0  # no attempt for longer than any backoff: the records went elsewhere
    assert stalls.report() == []
