"""Which failures mean "the store is not answering" (503, wait and retry), and which are the
store refusing a statement (never waited on in silence)."""

from __future__ import annotations

import sqlite3

import kafka.errors as kafka_errors
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


# -- a process started before its database answers ----------------------------------------

def _opening_failure(cause: Exception) -> Exception:
    """As `open_ledger` raises it: a one-line CommandError over StoreSetupError over the
    driver's error."""
    from infra.cli.common import CommandError
    from infra.store.sql_connection import StoreSetupError

    try:
        try:
            raise StoreSetupError(f"cannot connect to postgresql://db/x: {cause}") from cause
        except StoreSetupError as setup:
            raise CommandError(str(setup)) from setup
    except CommandError as exc:
        return exc


@pytest.mark.parametrize("cause", [
    psycopg.OperationalError("connection failed: Connection refused"),
    psycopg.OperationalError("connection failed: FATAL: the database system is starting up"),
    psycopg.OperationalError("connection timeout expired"),
])
def test_a_database_not_answering_yet_is_waited_for(cause):
    from infra.ops.startup import waits_out

    assert waits_out(_opening_failure(cause))


@pytest.mark.parametrize("cause", [
    psycopg.OperationalError('connection failed: FATAL: password authentication failed for '
                             'user "ledger"'),
    psycopg.OperationalError('connection failed: FATAL: database "ledgr" does not exist'),
    psycopg.OperationalError('connection failed: FATAL: no pg_hba.conf entry for host'),
    psycopg.errors.InsufficientPrivilege("permission denied for schema ledger"),
])
def test_a_database_that_refuses_the_process_ends_it_at_once(cause):
    from infra.ops.startup import waits_out

    assert not waits_out(_opening_failure(cause))


def test_waiting_for_the_store_logs_once_and_stops_on_request(caplog):
    import logging
    import threading

    from infra.ops.startup import wait_until_answering

    calls = []

    def build() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise _opening_failure(psycopg.OperationalError("Connection refused"))
        return "built"

    log = logging.getLogger("test.startup")
    with caplog.at_level(logging.INFO, logger="test.startup"):
        assert wait_until_answering(build, stop=threading.Event(), log=log) == "built"
    messages = [r.getMessage() for r in caplog.records]
    assert len(calls) == 3
    assert sum("waiting for it" in m for m in messages) == 1, messages
    assert any("answers after" in m for m in messages), messages

    stopped = threading.Event()
    stopped.set()

    def never() -> str:
        raise _opening_failure(psycopg.OperationalError("Connection refused"))

    assert wait_until_answering(never, stop=stopped, log=log) is None


@pytest.mark.parametrize("error, waited", [
    (kafka_errors.KafkaTimeoutError(
        "Unable to bootstrap from ['127.0.0.1:9092']"), True),
    (kafka_errors.KafkaConnectionError("111 ECONNREFUSED"), True),
    (kafka_errors.IncompatibleBrokerVersion("0.8"), False),
    (kafka_errors.TopicAuthorizationFailedError(), False),
])
def test_a_broker_not_answering_yet_is_waited_for_and_a_refusal_is_not(error, waited):
    from infra.ops.startup import waits_out

    assert waits_out(error) is waited
