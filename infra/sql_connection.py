"""One connection to the configured database (SQLite file or PostgreSQL schema), with `?`
placeholders rewritten for psycopg, so side tables need no driver code of their own."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from eventsourcing.persistence import OperationalError
from psycopg import sql

from infra.settings import Settings, display_url, ensure_parent_dir, sqlite_path


class StoreSetupError(OperationalError):
    """The configured store cannot be reached or prepared; the message says what to do."""


def ensure_schema(settings: Settings) -> None:
    """Create the configured PostgreSQL schema when it is missing, or say how to fix it.

    Every store (the event store and the side tables) goes through here before its tables
    are made, so a fresh STUDYLEDGER_DATABASE_SCHEMA just works."""
    if settings.is_sqlite:
        return
    with _pg_connect(settings) as conn:
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


def _pg_connect(settings: Settings) -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(settings.database_url, autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as exc:
        raise StoreSetupError(f"cannot connect to {display_url(settings.database_url)}: "
                              f"{' '.join(str(exc).split())}") from exc


class SqlConnection:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.is_sqlite = settings.is_sqlite
        self._conn: Any = self._connect()

    def _connect(self) -> Any:
        if self.is_sqlite:
            path = sqlite_path(self.settings.database_url)
            ensure_parent_dir(path)
            conn = sqlite3.connect(path, isolation_level=None, timeout=30,
                                   check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            return conn
        pg = _pg_connect(self.settings)
        _create_schema_if_missing(pg, self.settings.database_schema)
        pg.execute(f'SET search_path TO "{self.settings.database_schema}"')
        return pg

    def sql(self, statement: str) -> str:
        return statement if self.is_sqlite else statement.replace("?", "%s")

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        if self.is_sqlite:
            cur = self._conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                yield cur
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            cur.execute("COMMIT")
            return
        with self._conn.transaction(), self._conn.cursor() as cur:
            yield cur

    def query(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        cur = self._conn.cursor()
        try:
            cur.execute(self.sql(statement), params)
            return list(cur.fetchall())
        finally:
            cur.close()

    def execute(self, statement: str, params: Sequence[Any] = ()) -> None:
        """A statement that returns no rows, in autocommit."""
        cur = self._conn.cursor()
        try:
            cur.execute(self.sql(statement), params)
        finally:
            cur.close()

    def close(self) -> None:
        self._conn.close()
