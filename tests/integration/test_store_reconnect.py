"""Connections that die under the application (a server restart, an administrator's
pg_terminate_backend) are replaced without anyone noticing; a store that cannot be used is
StoreUnavailableError within the store timeout."""

from __future__ import annotations

import sqlite3
import time

import psycopg
import pytest

from domain.errors import StoreUnavailableError
from infra.bootstrap import build_ledger
from infra.settings import Settings
from infra.store.keys import KeyStore
from infra.views.writer import ViewStore
from tests.e2e.conftest import NOW, district_facts
from tests.factories import incoming


def terminate(url: str, pids: list[int]) -> None:
    with psycopg.connect(url, autocommit=True) as admin:
        for pid in pids:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


@pytest.mark.postgres
def test_side_tables_reconnect_after_their_connection_is_killed(postgres_url, pg_schema):
    settings = Settings(database_url=postgres_url, database_schema=pg_schema)
    views, keys = ViewStore(settings), KeyStore(settings)
    secret = keys.create("auditor", "A")
    pids = [views.query("SELECT pg_backend_pid()")[0][0],
            keys.db.query("SELECT pg_backend_pid()")[0][0]]
    terminate(postgres_url, pids)

    assert views.position() == 0  # a read: sent again on a new connection
    keys._cache.clear()
    assert keys.principal_for(secret) is not None
    with views.transaction() as cur:  # a transaction: its BEGIN found the connection dead
        cur.execute("SELECT 1")
    assert views.query("SELECT pg_backend_pid()")[0][0] not in pids
    views.close()
    keys.close()


@pytest.mark.postgres
def test_the_event_store_replaces_every_pooled_connection_after_they_die(postgres_url,
                                                                         pg_schema):
    settings = Settings(database_url=postgres_url, database_schema=pg_schema)
    ledger = build_ledger(settings)
    pool = ledger.recorder.datastore.pool  # type: ignore[attr-defined]
    held = [pool.getconn() for _ in range(pool.min_size)]
    pids = [conn.execute("SELECT pg_backend_pid()").fetchone()["pg_backend_pid"]
            for conn in held]
    for conn in held:
        pool.putconn(conn)
    terminate(postgres_url, pids)

    started = time.monotonic()
    results = ledger.record_facts(district_facts(), now=NOW, channel="test")
    assert {r.status for r in results} == {"stored"}
    assert ledger.recorder.max_notification_id() == len(results)
    assert time.monotonic() - started < 2, "waited on dead connections"
    ledger.close()


@pytest.mark.postgres
def test_a_store_that_refuses_connections_is_unavailable_within_the_timeout():
    settings = Settings(database_url="postgresql://postgres@127.0.0.1:1/none",
                        store_timeout_seconds=1)
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError):
        ViewStore(settings)
    assert time.monotonic() - started < 2


@pytest.mark.parametrize("locked", ["views", "events"])
def test_a_locked_sqlite_file_is_unavailable_within_the_timeout(tmp_path, locked):
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'ledger.db'}",
                        store_timeout_seconds=1)
    ledger, views = build_ledger(settings), ViewStore(settings)
    other = sqlite3.connect(tmp_path / "ledger.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another writer holds the file
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError):
        if locked == "views":
            with views.transaction() as cur:
                cur.execute("SELECT 1")
        else:
            ledger.record_facts([incoming("org.registered", {
                "org_id": "R", "name": "单位", "parent_id": None}, learner_id=None)],
                now=NOW, channel="test")
    assert time.monotonic() - started < 3
    other.execute("ROLLBACK")
    with views.transaction() as cur:  # usable again once the other writer is done
        cur.execute("SELECT 1")
    views.close()
    ledger.close()
