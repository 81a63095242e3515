"""`studyledger doctor`: is this deployment fit to run? One line per check (ok, note, warn
or FAIL, and what to do), exit 5 when anything failed.

The checks only look: the store is opened read-only and nothing is created (no file, schema
or table), so the doctor can be run against a production store at any time.
"""

from __future__ import annotations

import argparse
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import psycopg

from infra.cli.common import EXIT_OK, EXIT_UNHEALTHY
from infra.settings import Settings, display_url, sqlite_path
from infra.views.schema import LAYOUT_TABLES, VIEWS_VERSION, stored_layout

Status = Literal["ok", "note", "warn", "FAIL"]
TIMEOUT_SECONDS = 5
# The store's own tables (eventsourcing's events table, then ours), by what they hold.
SQLITE_TABLES = {"events": "stored_events", "fact keys": "fact_keys",
                 "parked facts": "parked_facts", "dead letters": "dead_letters"}
POSTGRES_TABLES = {"events": "studyledger_events", "fact keys": "studyledger_fact_keys",
                   "parked facts": "studyledger_parked_facts",
                   "dead letters": "studyledger_dead_letters"}


@dataclass(frozen=True)
class Check:
    status: Status
    name: str
    message: str

    def line(self) -> str:
        return f"{self.status:<5} {self.name}: {self.message}"


class _Store:
    """A read-only look at the configured store."""

    def __init__(self, settings: Settings) -> None:
        self.is_sqlite = settings.is_sqlite
        self.tables = SQLITE_TABLES if self.is_sqlite else POSTGRES_TABLES
        self.conn: Any = None

    def query(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        cur = self.conn.cursor()
        try:
            cur.execute(statement if self.is_sqlite else statement.replace("?", "%s"), params)
            return list(cur.fetchall())
        finally:
            cur.close()

    def existing_tables(self) -> set[str]:
        if self.is_sqlite:
            rows = self.query("SELECT name FROM sqlite_master WHERE type = 'table'")
        else:
            rows = self.query("SELECT table_name FROM information_schema.tables "
                              "WHERE table_schema = current_schema()")
        return {str(row[0]) for row in rows}

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()


def _open_sqlite(store: _Store, settings: Settings) -> Check:
    path = Path(sqlite_path(settings.database_url)).expanduser()
    if not path.is_file():
        return Check("FAIL", "store", f"no store at {path}: check STUDYLEDGER_DATABASE_URL, or "
                     "create it (`studyledger ingest FILE`, `studyledger demo`, `make run`)")
    try:
        store.conn = sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True,
                                     timeout=TIMEOUT_SECONDS)
        version = store.query("SELECT sqlite_version()")[0][0]
    except sqlite3.Error as exc:
        return Check("FAIL", "store", f"cannot read {path}: {exc}: check the file's "
                     "permissions and that it is a StudyLedger store")
    return Check("ok", "store", f"{display_url(settings.database_url)} (SQLite {version})")


def _open_postgres(store: _Store, settings: Settings) -> Iterator[Check]:
    shown = display_url(settings.database_url)
    try:
        store.conn = psycopg.connect(settings.database_url, autocommit=True,
                                     connect_timeout=TIMEOUT_SECONDS)
    except psycopg.Error as exc:
        yield Check("FAIL", "store", f"cannot connect to {shown}: {' '.join(str(exc).split())}: "
                    "is the server up, and STUDYLEDGER_DATABASE_URL right?")
        return
    version = str(store.query("SHOW server_version")[0][0]).split()[0]
    yield Check("ok", "store", f"{shown} (PostgreSQL {version})")
    schema = settings.database_schema
    if not store.query("SELECT 1 FROM pg_namespace WHERE nspname = ?", (schema,)):
        yield Check("FAIL", "schema", f'"{schema}" does not exist: it is created on the first '
                    "write when the user may (`studyledger ingest`, `serve`); else have the "
                    f'owner run CREATE SCHEMA "{schema}", or fix STUDYLEDGER_DATABASE_SCHEMA')
        return
    store.query("SELECT set_config('search_path', ?, false)", (f'"{schema}"',))
    yield Check("ok", "schema", f'"{schema}"')


def store_checks(settings: Settings) -> Iterator[Check]:
    """Reachable, schema, tables, then what the tables say; stops at the first failure."""
    store = _Store(settings)
    try:
        opened = ([_open_sqlite(store, settings)] if settings.is_sqlite
                  else list(_open_postgres(store, settings)))
        yield from opened
        if any(c.status == "FAIL" for c in opened):
            return
        existing = store.existing_tables()
        missing = [role for role, table in store.tables.items() if table not in existing]
        if missing:
            yield Check("FAIL", "tables", f"missing: {', '.join(missing)}: the store is not set "
                        "up; any command that writes (`ingest`, `serve`, `demo`) creates them")
            return
        yield Check("ok", "tables", ", ".join(store.tables))
        yield from _log_checks(store)
        yield from _view_checks(store, existing)
    finally:
        store.close()


def _log_end(store: _Store) -> int:
    events = store.tables["events"]
    column = "rowid" if store.is_sqlite else "notification_id"
    return int(store.query(f"SELECT MAX({column}) FROM {events}")[0][0] or 0)


def _log_checks(store: _Store) -> Iterator[Check]:
    yield Check("ok", "log", f"at position {_log_end(store)}")
    parked = store.query(f"SELECT COUNT(*), MIN(parked_at) FROM {store.tables['parked facts']}")
    if parked[0][0]:
        since = str(parked[0][1])[:19].replace(" ", "T")  # SQLite keeps text, PostgreSQL a time
        yield Check("note", "parked", f"{parked[0][0]} facts wait for a prerequisite (oldest "
                    f"since {since}): `studyledger parked` lists them")
    dead = store.query(f"SELECT COUNT(*) FROM {store.tables['dead letters']} "
                       "WHERE NOT resolved")[0][0]
    if dead:
        yield Check("warn", "dead letters", f"{dead} unresolved: `studyledger dead-letters "
                    "list` says why; fix the cause, then `studyledger dead-letters redrive`")


def _view_checks(store: _Store, existing: set[str]) -> Iterator[Check]:
    if not existing >= LAYOUT_TABLES:
        yield Check("warn", "views", "not built yet: run `studyledger project --once` (or "
                    "`serve`, which projects), else boards and lists are empty")
        return
    layout, position = stored_layout(store.query)
    if layout != VIEWS_VERSION:
        yield Check("warn", "views", f"layout {layout or 'unknown'}, this release uses "
                    f"{VIEWS_VERSION}: they are rebuilt from the log on first use; run "
                    "`studyledger replay` now rather than on the first request")
        return
    yield Check("ok", "views", f"layout {VIEWS_VERSION}")
    lag = _log_end(store) - position
    if lag > 0:
        yield Check("warn", "views lag", f"{lag} facts not projected yet (views at position "
                    f"{position}): is `studyledger project` (or `serve`) running? "
                    "`studyledger project --once` catches up")
    else:
        yield Check("ok", "views lag", f"0 (views at position {position})")


def kafka_checks(settings: Settings) -> Iterator[Check]:
    if not settings.kafka_bootstrap:
        yield Check("note", "kafka", "not configured (STUDYLEDGER_KAFKA_BOOTSTRAP unset): facts "
                    "arrive over HTTP and files only")
        return
    from kafka.errors import KafkaError

    from infra.kafka_io import broker_topics

    try:
        topics = broker_topics(settings, timeout_ms=TIMEOUT_SECONDS * 1000)
    except (KafkaError, OSError) as exc:
        yield Check("FAIL", "kafka", f"cannot reach {settings.kafka_bootstrap}: {exc}: is the "
                    "broker up, and STUDYLEDGER_KAFKA_BOOTSTRAP right?")
        return
    yield Check("ok", "kafka", f"{settings.kafka_bootstrap} reachable")
    wanted = [settings.kafka_topic_events, settings.kafka_topic_dead_letters,
              settings.kafka_topic_recorded]
    missing = [t for t in wanted if t not in topics]
    if missing:
        yield Check("FAIL", "topics", f"missing: {', '.join(missing)}: run `studyledger "
                    "topics create` (or check STUDYLEDGER_KAFKA_TOPIC_*)")
    else:
        yield Check("ok", "topics", ", ".join(wanted))


def settings_checks(settings: Settings) -> Iterator[Check]:
    if settings.secret_key:
        yield Check("ok", "secret key", "STUDYLEDGER_SECRET_KEY is set")
    else:
        yield Check("note", "secret key", "STUDYLEDGER_SECRET_KEY unset: page cursors are "
                    "sealed with a key generated once and kept in the store; set it to choose "
                    "or rotate the key")
    if settings.fault_kill_at:
        yield Check("warn", "fault injection", f"STUDYLEDGER_FAULT_KILL_AT={settings.fault_kill_at}"
                    " is for tests only: this process will SIGKILL itself; unset it")


def run_checks(settings: Settings) -> Iterator[Check]:
    yield from store_checks(settings)
    yield from kafka_checks(settings)
    yield from settings_checks(settings)


def cmd_doctor(args: argparse.Namespace, settings: Settings) -> int:
    failed = 0
    for check in run_checks(settings):
        print(check.line(), flush=True)
        failed += check.status == "FAIL"
    print(f"{failed} check{'s' if failed > 1 else ''} failed" if failed else "no check failed")
    return EXIT_UNHEALTHY if failed else EXIT_OK


def add_doctor_command(sub: Any) -> None:
    p = sub.add_parser("doctor", help="check the store, the read views, the broker and the "
                       "settings; one line each, exit 5 when a check fails",
                       description="Looks only: opens the store read-only and creates nothing.")
    p.set_defaults(func=cmd_doctor)
