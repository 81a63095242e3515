"""Which failures mean "the store is not answering" (503, wait and retry), and which are the
store refusing a statement (never waited on in silence)."""

from __future__ import annotations

import sqlite3

import psycopg
import pytest
from eventsourcing.persistence import DataError, IntegrityError, OperationalError

from domain.errors import StoreUnavailableError
from infra.store.errors import is_unavailable, store_errors


def wrapped(library_error: type[Exception], cause: Exception) -> Exception:
    """As the library raises them: its own class, the driver's error as the cause."""
    try:
        raise library_error(str(cause)) from cause
    except library_error as exc:
        return exc


@pytest.mark.parametrize("error", [
    psycopg.OperationalError("connection failed: Connection refused"),
    psycopg.errors.AdminShutdown("terminating connection due to administrator command"),
    sqlite3.OperationalError("database is locked"),
    sqlite3.OperationalError("unable to open database file"),
    wrapped(OperationalError, psycopg.OperationalError("the connection is closed")),
    wrapped(OperationalError, sqlite3.OperationalError("database is locked")),
])
def test_lost_connections_locks_and_shutdowns_are_unavailability(error):
    assert is_unavailable(error)
    with pytest.raises(StoreUnavailableError) as raised, store_errors():
        raise error
    assert raised.value.__cause__ is error


@pytest.mark.parametrize("error", [
    sqlite3.OperationalError("no such table: v_learners"),
    psycopg.errors.ProgramLimitExceeded("index row size 9000 exceeds btree maximum"),
    wrapped(OperationalError, sqlite3.OperationalError("no such column: x")),
    wrapped(DataError, psycopg.DataError("PostgreSQL text fields cannot contain NUL")),
    wrapped(IntegrityError, psycopg.errors.UniqueViolation("duplicate key")),
    ValueError("not a store error at all"),
])
def test_statements_the_store_refuses_keep_their_own_error(error):
    assert not is_unavailable(error)
    with pytest.raises(type(error)), store_errors():
        raise error


def test_store_unavailable_is_not_an_error_the_library_retries():
    # The library's recorders retry OperationalError ten times per call: a store that is
    # down would hold every request for tens of seconds.
    assert not issubclass(StoreUnavailableError, OperationalError)
