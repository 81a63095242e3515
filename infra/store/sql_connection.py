"""One connection to the configured database (SQLite file or PostgreSQL schema), with `?`
placeholders rewritten for psycopg, so side tables need no driver code of their own. A
PostgreSQL connection that breaks (the server restarted) is replaced on the next use."""

from __future__ import annotations

import contextlib
import math
import re
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg
from psycopg import sql

from domain.errors import StoreUnavailableError
from infra.settings import Settings, display_url, ensure_parent_dir, sqlite_path
from infra.store.errors import store_errors

T = TypeVar("T")


class StoreSetupError(StoreUnavailableError):
    """The configured store cannot be reached or prepared; the message says what to do."""


def connection_options(settings: Settings) -> dict[str, Any]:
    """libpq settings that bound the waits on a server that is gone: the connection attempt,
    and (TCP keepalives) a reply that will never come from a host that vanished."""
    seconds = max(2, math.ceil(settings.store_timeout_seconds))  # libpq takes whole seconds
    return {"connect_timeout": seconds, "keepalives": 1, "keepalives_idle": seconds,
            "keepalives_interval": 1, "keepalives_count": 3}


def ddl_lock_name(schema: str) -> str:
    """Processes started together on a fresh PostgreSQL schema (serve, project, consume)
    would race on CREATE TABLE IF NOT EXISTS, which PostgreSQL may answer with a unique
    violation on its catalog: every creation of tables in a schema takes this advisory
    lock first (transaction-level in ours, session-level around the library's)."""
    return f"studyledger-ddl:{schema}"


_INDEX_IF_NOT_EXISTS = re.compile(
    r'CREATE\s+(?:UNIQUE\s+)?INDEX\s+IF\s+NOT\s+EXISTS\s+"?([A-Za-z0-9_]+)"?', re.IGNORECASE)


def run_ddl(cur: Any, statements: Sequence[str], *, schema: str | None) -> None:
    """Run CREATE ... IF NOT EXISTS statements, skipping (on PostgreSQL, `schema` given) an
    index that already exists.

    PostgreSQL takes a SHARE lock on the table for CREATE INDEX IF NOT EXISTS before it looks
    whether the index exists, and holds it to the commit. A process starting beside a
    running writer would then hold one table while waiting for another that the writer
    holds while waiting for the first: a deadlock. Looking in the catalog first takes no
    table lock; a missing index is only ever created before any writer uses its table,
    under the schema's DDL lock."""
    for statement in statements:
        found = _INDEX_IF_NOT_EXISTS.match(statement.strip()) if schema is not None else None
        if found is not None:
            cur.execute("SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = "
                        "c.relnamespace WHERE n.nspname = %s AND c.relname = %s",
                        (schema, found.group(1)))
            if cur.fetchone() is not None:
                continue
        cur.execute(statement)


def ensure_schema(settings: Settings) -> None:
    """Create the configured PostgreSQL schema when it is missing, or say how to fix it.

    Every store (the event store and the side tables) goes through here before its tables
    are made, so a fresh STUDYLEDGER_DATABASE_SCHEMA just works."""
    if settings.is_sqlite:
        return
    with pg_connect(settings) as conn:
        _create_schema_if_missing(conn, settings.database_schema)


def _create_schema_if_missing(conn: psycopg.Connection[Any], schema: str) -> None:
    # Look first: CREATE SCHEMA IF NOT EXISTS needs the CREATE privilege even when it exists.
    if conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone():
        return
    try:
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
    except psycopg.errors.UniqueViolation:
        pass  # another process created it at the same moment
    except psycopg.errors.InsufficientPrivilege as exc:
        user = conn.info.user
        raise StoreSetupError(
            f'schema "{schema}" does not exist and user {user} may not create it: have the '
            f'database owner run CREATE SCHEMA "{schema}" AUTHORIZATION "{user}", or set '
            "STUDYLEDGER_DATABASE_SCHEMA to a schema that exists") from exc


def pg_connect(settings: Settings) -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(settings.database_url, autocommit=True,
                               **connection_options(settings))
    except psycopg.OperationalError as exc:
        raise StoreSetupError(f"cannot connect to {display_url(settings.database_url)}: "
                              f"{' '.join(str(exc).split())}") from exc


class SqlConnection:
    """Used by one thread at a time (its owner's, or under its owner's lock).

    Every failure to reach the store is StoreUnavailableError. A broken PostgreSQL
    connection is dropped and the next call opens a new one; a read, or the BEGIN of a
    transaction, that meets a connection which died while idle is tried once more on a new
    one, since nothing was done yet, so the first request after a restart succeeds.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.is_sqlite = settings.is_sqlite
        self._conn: Any = None
        with self._failures():
            self._conn = self._connect()

    def _connect(self) -> Any:
        if self.is_sqlite:
            path = sqlite_path(self.settings.database_url)
            ensure_parent_dir(path)
            # A file another writer holds locked longer than the store timeout is unavailable.
            conn = sqlite3.connect(path, isolation_level=None,
                                   timeout=self.settings.store_timeout_seconds,
                                   check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            return conn
        pg = pg_connect(self.settings)
        _create_schema_if_missing(pg, self.settings.database_schema)
        pg.execute(f'SET search_path TO "{self.settings.database_schema}"')
        return pg

    def _live(self) -> Any:
        if self._conn is None:
            self._conn = self._connect()
        return self._conn

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    @contextmanager
    def _failures(self) -> Iterator[None]:
        try:
            with store_errors():
                yield
        except StoreUnavailableError:
            if not self.is_sqlite:
                self._drop()  # whatever state it is in, a new connection is the way back
            raise

    def _on_live_connection(self, work: Callable[[Any], T]) -> T:
        """`work(connection)`; on PostgreSQL once more on a new connection if the one in
        hand turns out to be dead. Only for work that is safe to send twice."""
        for attempt in (1, 2):
            conn = self._live()
            try:
                return work(conn)
            except psycopg.OperationalError:
                if self.is_sqlite or attempt == 2 or not conn.closed:
                    raise
                self._drop()
        raise AssertionError("unreachable")

    def sql(self, statement: str) -> str:
        return statement if self.is_sqlite else statement.replace("?", "%s")

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        with self._failures():
            if self.is_sqlite:
                cur = self._live().cursor()
                cur.execute("BEGIN IMMEDIATE")
                try:
                    yield cur
                except BaseException:
                    cur.execute("ROLLBACK")
                    raise
                cur.execute("COMMIT")
                return
            conn = self._on_live_connection(_begin)
            try:
                with conn.cursor() as cur:
                    yield cur
            except BaseException:
                if not conn.closed:
                    with contextlib.suppress(psycopg.Error):
                        conn.rollback()
                raise
            conn.commit()

    @contextlib.contextmanager
    def ddl_transaction(self) -> Iterator[Any]:
        """A transaction for creating tables: one at a time per schema (ddl_lock_name)."""
        with self.transaction() as cur:
            if not self.is_sqlite:  # SQLite's BEGIN IMMEDIATE already holds the whole file
                cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))",
                            (ddl_lock_name(self.settings.database_schema),))
            yield cur

    def create_tables(self, statements: Sequence[str]) -> None:
        """Create whatever of these tables and indexes is missing (see run_ddl)."""
        with self.ddl_transaction() as cur:
            self.run_ddl(cur, statements)

    def run_ddl(self, cur: Any, statements: Sequence[str]) -> None:
        run_ddl(cur, statements,
                schema=None if self.is_sqlite else self.settings.database_schema)

    def query(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        def run(conn: Any) -> list[tuple[Any, ...]]:
            cur = conn.cursor()
            try:
                cur.execute(self.sql(statement), params)
                return list(cur.fetchall())
            finally:
                cur.close()

        with self._failures():
            return self._on_live_connection(run)

    def execute(self, statement: str, params: Sequence[Any] = ()) -> None:
        """A statement that returns no rows, in autocommit; it must be safe to run twice
        (ANALYZE, INSERT ... ON CONFLICT DO NOTHING), as a dead connection retries it."""
        def run(conn: Any) -> None:
            cur = conn.cursor()
            try:
                cur.execute(self.sql(statement), params)
            finally:
                cur.close()

        with self._failures():
            self._on_live_connection(run)

    def close(self) -> None:
        self._drop()


def _begin(conn: Any) -> Any:
    conn.execute("BEGIN")
    return conn
