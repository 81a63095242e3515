"""Processes started together on a fresh PostgreSQL schema (serve, project, consume) create
their tables one at a time: each creation waits for the schema's DDL lock, so none of them
meets PostgreSQL's catalog race ("duplicate key value violates pg_type_typname_nsp_index").
A process starting beside running writers takes no lock on their tables, so it can neither
wait on them nor deadlock with them."""

from __future__ import annotations

import threading

import psycopg
import pytest

from infra.bootstrap import build_ledger
from infra.settings import Settings
from infra.store.certificates import CertificateStore
from infra.store.keys import KeyStore
from infra.store.read_audit import ReadAuditStore
from infra.store.relay_position import RelayPositionStore
from infra.store.sql_connection import ddl_lock_name
from infra.views.writer import ViewStore
from infra.xapi.attachment_store import AttachmentStore
from infra.xapi.document_tables import DocumentTables
from infra.xapi.statement_tables import StatementTables

pytestmark = pytest.mark.postgres

CREATORS = {
    "views": lambda settings: ViewStore(settings).close(),
    "keys": lambda settings: KeyStore(settings).close(),
    "event store": lambda settings: build_ledger(settings).close(),
    "certificates": lambda settings: CertificateStore(settings).close(),
    "read audit": lambda settings: ReadAuditStore(settings).close(),
    "relay position": lambda settings: RelayPositionStore(settings, "relay").close(),
    "xapi statements": lambda settings: StatementTables(settings).close(),
    "xapi documents": lambda settings: DocumentTables(settings).close(),
    "xapi attachments": lambda settings: AttachmentStore(settings).close(),
}


def _start_creating(creator: str, settings: Settings
                    ) -> tuple[threading.Thread, threading.Event, list[Exception]]:
    """Run one creator in a thread: (the thread, set when it is done, what it raised)."""
    done, failed = threading.Event(), []

    def create() -> None:
        try:
            CREATORS[creator](settings)
        except Exception as exc:  # noqa: BLE001 - reported by the caller's assertion
            failed.append(exc)
        done.set()

    worker = threading.Thread(target=create)
    worker.start()
    return worker, done, failed


@pytest.mark.parametrize("creator", list(CREATORS))
def test_creating_tables_waits_for_the_schema_ddl_lock(postgres_url, pg_schema, creator):
    settings = Settings(database_url=postgres_url, database_schema=pg_schema)
    with psycopg.connect(postgres_url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(hashtext(%s))", (ddl_lock_name(pg_schema),))
        worker, done, failed = _start_creating(creator, settings)
        assert not done.wait(1.5), f"{creator} created its tables without the DDL lock"
        holder.execute("SELECT pg_advisory_unlock(hashtext(%s))", (ddl_lock_name(pg_schema),))
    assert done.wait(30) and not failed, failed
    worker.join()


def test_many_processes_worth_of_creators_at_once_all_succeed(postgres_url, pg_schema):
    settings = Settings(database_url=postgres_url, database_schema=pg_schema)
    makers = [*CREATORS.values(), *CREATORS.values()]
    start, failed = threading.Barrier(len(makers)), []

    def create(make) -> None:
        start.wait()
        try:
            make(settings)
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            failed.append(exc)

    workers = [threading.Thread(target=create, args=(make,)) for make in makers]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert not failed, failed


@pytest.mark.parametrize("creator", list(CREATORS))
def test_starting_beside_running_writers_takes_no_lock_on_their_tables(
        postgres_url, pg_schema, creator):
    """A writer mid-transaction holds ROW EXCLUSIVE on the tables it touched; a second
    process starting then must not wait for it (CREATE INDEX IF NOT EXISTS would, holding
    the tables it already passed: the deadlock of a starting runner beside an active one)."""
    settings = Settings(database_url=postgres_url, database_schema=pg_schema)
    CREATORS[creator](settings)
    with psycopg.connect(postgres_url) as writer:
        tables = [row[0] for row in writer.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s", (pg_schema,))]
        assert tables
        for table in tables:
            writer.execute(f'LOCK TABLE "{pg_schema}"."{table}" IN ROW EXCLUSIVE MODE')
        worker, done, failed = _start_creating(creator, settings)
        finished = done.wait(30)
        writer.rollback()
    worker.join()
    assert finished, f"{creator} waited on a table a running writer holds"
    assert not failed, failed
