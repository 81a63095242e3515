"""One connection to the configured database (SQLite file or PostgreSQL schema), with `?`
placeholders rewritten for psycopg, so side tables need no driver code of their own."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg

from infra.settings import Settings, ensure_parent_dir, sqlite_path


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
        conn = psycopg.connect(self.settings.database_url, autocommit=True)
        conn.execute(f'SET search_path TO "{self.settings.database_schema}"')
        return conn

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
