"""One projection runner per store: the runner that holds the lease projects, the others
(a second `serve`, a `project` left running) stand by and take over when it dies.

The lease dies with its holder, whatever the death: on SQLite an OS file lock beside the
database file (as the batch writer's in infra.store.recorders), on PostgreSQL a session advisory
lock on a connection of its own. The view writes are fenced as well (infra.views.writer), so
even two runners that both believe they hold it cannot write over each other.
"""

from __future__ import annotations

import contextlib
import fcntl
from typing import IO, Any

import psycopg

from infra.settings import Settings, sqlite_path
from infra.store.errors import store_errors
from infra.store.sql_connection import pg_connect
from projections.ports import LeaseHeldError, NoLease, RunnerLease

__all__ = ["AdvisoryLease", "FileLease", "LeaseHeldError", "NoLease", "runner_lease"]


class FileLease:
    def __init__(self, path: str) -> None:
        self.path = path
        self._handle: IO[str] | None = None

    def hold(self) -> bool:
        if self._handle is not None:
            return True
        handle = open(self.path, "a")  # noqa: SIM115 - kept open while the lease is held
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self._handle = handle
        return True

    def release(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()


class AdvisoryLease:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.name = f"studyledger-projections:{settings.database_schema}"
        self._conn: psycopg.Connection[Any] | None = None
        self._held = False

    def hold(self) -> bool:
        with store_errors():
            if self._conn is None:
                self._conn = pg_connect(self.settings)
            try:
                if self._held:
                    self._conn.execute("SELECT 1")  # the session lives, so the lock does
                    return True
                row = self._conn.execute("SELECT pg_try_advisory_lock(hashtext(%s))",
                                         (self.name,)).fetchone()
            except psycopg.Error:
                self._drop()  # the session is gone, and the lock with it
                raise
            self._held = bool(row and row[0])
            return self._held

    def release(self) -> None:
        if self._conn is not None and self._held and not self._conn.closed:
            with contextlib.suppress(psycopg.Error):  # else the session is gone, and the lock
                self._conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (self.name,))
        self._drop()

    def _drop(self) -> None:
        conn, self._conn, self._held = self._conn, None, False
        if conn is not None:
            conn.close()


def runner_lease(settings: Settings) -> RunnerLease:
    if settings.is_sqlite:
        return FileLease(f"{sqlite_path(settings.database_url)}.projections.lock")
    return AdvisoryLease(settings)
