"""One name for "the store is not answering": the drivers' and the event-sourcing library's
failures to reach the database become domain.errors.StoreUnavailableError, which the API
answers with 503 and the long-running loops (projections, consume) wait out.

Only failures of the database's availability are translated. A statement the database
refuses (bad data, a constraint, a missing table) keeps its own error, so that it is never
mistaken for an outage and waited on in silence.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from eventsourcing.persistence import InterfaceError, OperationalError
from eventsourcing.postgres import PostgresDatastore
from eventsourcing.sqlite import SQLiteDatastore

from domain.errors import StoreUnavailableError, one_line

# sqlite3 raises OperationalError for "no such table" too: only these mean the file itself
# cannot be used right now.
_SQLITE_UNAVAILABLE = ("locked", "unable to open", "disk i/o error", "disk is full",
                       "readonly database")


def is_unavailable(exc: BaseException) -> bool:
    """Whether `exc` says the store could not be reached or used, rather than that it
    refused what it was asked."""
    if isinstance(exc, StoreUnavailableError):
        return True
    if isinstance(exc, psycopg.errors.ProgramLimitExceeded):
        return False  # an OperationalError by class, but the data is at fault (e.g. too long)
    if isinstance(exc, psycopg.OperationalError):
        return True  # lost or refused connection, shutdown, pool timeout, lock timeout, ...
    if isinstance(exc, sqlite3.OperationalError):
        return any(words in str(exc).lower() for words in _SQLITE_UNAVAILABLE)
    if isinstance(exc, OperationalError | InterfaceError):
        # The library's wrapper of a driver error: judge the driver's error.
        return exc.__cause__ is None or is_unavailable(exc.__cause__)
    return False


@contextmanager
def store_errors() -> Iterator[None]:
    """Raise StoreUnavailableError for any failure of the store's availability inside."""
    try:
        yield
    except StoreUnavailableError:
        raise
    except Exception as exc:
        if not is_unavailable(exc):
            raise
        raise StoreUnavailableError(one_line(exc)) from exc


class _GuardedPostgresDatastore(PostgresDatastore):
    @contextmanager
    def get_connection(self) -> Iterator[Any]:
        # Every recorder statement (transaction(), cursor()) comes through here. Each pooled
        # connection is checked before use: after a database restart all of them are dead.
        # (The pool's own check, POSTGRES_PRE_PING, backs off a second or more per dead
        # connection it meets, so the first requests after a restart timed out.)
        with store_errors():
            for _ in range(2):
                with super().get_connection() as conn:
                    if _answers(conn):
                        yield conn
                        return
                # The others were opened before the same restart: check them all at once.
                self.pool.check()
            with super().get_connection() as conn:
                yield conn


def _answers(conn: Any) -> bool:
    try:
        conn.execute("")
    except psycopg.Error:
        return False
    return True


class _GuardedSQLiteDatastore(SQLiteDatastore):
    @contextmanager
    def transaction(self, *, commit: bool) -> Iterator[Any]:
        with store_errors(), super().transaction(commit=commit) as cursor:
            yield cursor

    @contextmanager
    def get_connection(self, *, commit: bool) -> Iterator[Any]:
        with store_errors(), super().get_connection(commit=commit) as conn:
            yield conn


def guard_event_store(datastore: Any, *, timeout: float, options: dict[str, Any]) -> None:
    """Make the event store's datastore raise StoreUnavailableError, and recover quickly.

    The library builds its datastore itself and has no setting for the class, so the
    built one is given the guarded subclass (which only wraps `get_connection`). Its pool
    gives up a connection attempt after `timeout` (then the next request tries afresh)
    instead of backing off for up to five minutes, which left the API failing for a minute
    after a short database restart; new connections get `options` (timeouts).
    """
    if isinstance(datastore, PostgresDatastore):
        datastore.__class__ = _GuardedPostgresDatastore
        pool = datastore.pool
        pool.reconnect_timeout = timeout
        if isinstance(pool.kwargs, dict):
            pool.kwargs.update(options)
    elif isinstance(datastore, SQLiteDatastore):
        datastore.__class__ = _GuardedSQLiteDatastore
