"""Every process keeps few PostgreSQL connections open: the event store's pool keeps
STUDYLEDGER_POSTGRES_POOL_SIZE of them (the library's default was 5 per process, so a few
API workers, consumers and runners filled a server's max_connections of 100), grows under
concurrent use, and closes them all with the store."""

from __future__ import annotations

import time

import psycopg
import pytest

from infra.bootstrap import build_ledger
from infra.settings import Settings

pytestmark = pytest.mark.postgres


def _open_connections(url: str, schema: str) -> int:
    """Backends this process opened for the store (libpq names them after PGAPPNAME)."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE pid <> "
                           "pg_backend_pid() AND datname = current_database() AND "
                           "application_name = %s", (schema,)).fetchone()
        return int(row[0]) if row else 0


def _settled_count(url: str, schema: str, *, at_most: int) -> int:
    """The connections open once those closed have gone: the server ends a backend a moment
    after its client hangs up (start-up's schema check, a closed store)."""
    deadline = time.monotonic() + 10
    while (count := _open_connections(url, schema)) > at_most and time.monotonic() < deadline:
        time.sleep(0.05)
    return count


@pytest.mark.parametrize("pool_size", [1, 3])
def test_an_idle_event_store_holds_the_configured_number_of_connections(
        postgres_url, pg_schema, monkeypatch, pool_size):
    monkeypatch.setenv("PGAPPNAME", pg_schema)  # libpq names every connection this process opens
    ledger = build_ledger(Settings(database_url=postgres_url, database_schema=pg_schema,
                                   postgres_pool_size=pool_size))
    try:
        ledger.last_position()
        pool = ledger.recorder.datastore.pool
        pool.wait(10)  # the pool has opened the connections it keeps
        assert pool.min_size == pool_size
        # Creating the tables took two at once (the DDL lock's session and its transaction),
        # which the pool may have opened beside the ones it was still opening.
        assert pool_size <= _settled_count(postgres_url, pg_schema, at_most=pool_size + 2
                                           ) <= pool_size + 2
    finally:
        ledger.close()
    assert _settled_count(postgres_url, pg_schema, at_most=0) == 0
