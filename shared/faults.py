"""Telling an operational failure from a bad record.

A consumer that fails to apply an event must decide: is the world away (the database
restarting, a file locked, the disk full, the broker timing out), or is this record bad
on its own? The first kind passes by itself and the record must wait for it, however
long; only the second may go to a dead-letter topic. ``is_transient`` is that decision,
made from the exception and everything it was raised from, so that a driver error
wrapped by SQLAlchemy or FastStream is still seen for what it is.

When in doubt about the database, a failure counts as transient: a consumer that waits
raises an alarm (``/health/ready``, a metric) and loses nothing, while one that
dead-letters a healthy record needs a person to replay it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

from aiokafka import errors as kafka_errors
from asyncpg.exceptions import InternalClientError  # type: ignore[import-untyped]
from sqlalchemy import exc as sa_exc

_TRANSIENT_SQLSTATE_CLASSES = frozenset({"08", "40", "53", "55", "57", "58"})
"""PostgreSQL error classes that pass by themselves: connection exception, transaction
rollback (serialization failure, deadlock), insufficient resources (disk full, too many
connections), object not in prerequisite state (lock not available), operator
intervention (shutdown, terminated backend), system error (I/O)."""

_TRANSIENT_TYPES = (
    OSError,  # refused connections, timeouts, a full disk
    sqlite3.OperationalError,
    InternalClientError,  # asyncpg's state after its connection was cut mid-operation
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.DisconnectionError,
    sa_exc.TimeoutError,  # no pooled connection free in time
    kafka_errors.KafkaConnectionError,
    kafka_errors.KafkaTimeoutError,
    kafka_errors.NodeNotReadyError,
    kafka_errors.NoBrokersAvailable,
)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what it was raised from or during, each once (cycles stop)."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        orig = getattr(current, "orig", None)
        todo += [current.__cause__, current.__context__]
        if isinstance(orig, BaseException):
            todo.append(orig)


def _transient_one(exc: BaseException) -> bool:
    if isinstance(exc, _TRANSIENT_TYPES):
        return True
    if isinstance(exc, kafka_errors.KafkaError):
        return bool(getattr(exc, "retriable", False))
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    sqlstate = getattr(exc, "sqlstate", None)
    return isinstance(sqlstate, str) and sqlstate[:2] in _TRANSIENT_SQLSTATE_CLASSES


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` is an operational failure that retrying the same work will outlast
    (database, disk or broker away), rather than something wrong with the work itself."""
    return any(_transient_one(e) for e in _chain(exc))
