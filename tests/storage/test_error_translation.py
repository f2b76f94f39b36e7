"""storage/error_translation.py: the one table of database errors the domain expects."""

from __future__ import annotations

import sqlite3

from sqlalchemy import exc

from segmenta.domain.errors import Busy, TimedOut
from segmenta.storage import error_translation, guard
from segmenta.storage.error_translation import translate


class PostgresError(Exception):
    def __init__(self, message: str, sqlstate: str) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


def test_lock_contention_is_busy_on_both_back_ends() -> None:
    locked = sqlite3.OperationalError("database is locked")
    assert isinstance(translate(locked), Busy)
    wrapped = exc.OperationalError("UPDATE customers …", {}, locked)
    assert isinstance(translate(wrapped), Busy)
    deadlock = translate(PostgresError("deadlock detected", "40P01"))
    assert isinstance(deadlock, Busy) and "waited for each other's locks" in deadlock.message
    assert deadlock.retry_after == error_translation.RETRY_AFTER


def test_a_statement_stopped_by_its_limit_is_timed_out() -> None:
    limited = guard.FailedStatement(limit=2.0, interrupted=True)
    stopped = translate(sqlite3.OperationalError("interrupted"), limited)
    assert isinstance(stopped, TimedOut) and "2 s limit" in stopped.message
    assert translate(sqlite3.OperationalError("interrupted")) is None  # not by the limit's timer
    cancelled = translate(PostgresError("canceling statement due to statement timeout", "57014"), limited)
    assert isinstance(cancelled, TimedOut) and cancelled.retry_after is None


def test_other_errors_are_not_translated_and_domain_errors_pass_through() -> None:
    assert translate(ValueError("no")) is None
    assert translate(PostgresError("unique violation", "23505")) is None
    busy = Busy("already busy", retry_after=None)
    assert translate(busy) is busy

