"""The read audit table: every read of a person's record, appended, never changed.

Kept beside the events, apart from the view tables, so that a views `replay` (which drops
and rebuilds the views) never loses it; only INSERT and SELECT are ever issued against it.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

from api.read_audit import ReadRecord
from infra.settings import Settings
from infra.store.sql_connection import SqlConnection

# Times as fixed-width UTC text: the same ordering and comparison on SQLite and PostgreSQL.
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
COLUMNS = "at, key_id, role, org_id, learner_id, route, method, status"


def _ddl(is_sqlite: bool) -> list[str]:
    serial = "INTEGER PRIMARY KEY AUTOINCREMENT" if is_sqlite else "BIGSERIAL PRIMARY KEY"
    return [f"CREATE TABLE IF NOT EXISTS read_audit (id {serial}, at TEXT NOT NULL, "
            "key_id TEXT NOT NULL, role TEXT NOT NULL, org_id TEXT NOT NULL, "
            "learner_id TEXT NOT NULL, route TEXT NOT NULL, method TEXT NOT NULL, "
            "status INTEGER NOT NULL)",
            "CREATE INDEX IF NOT EXISTS read_audit_learner ON read_audit (learner_id, id)",
            "CREATE INDEX IF NOT EXISTS read_audit_key ON read_audit (key_id, id)"]


def _text(at: datetime) -> str:
    return at.astimezone(UTC).strftime(TIME_FORMAT)


class ReadAuditStore:
    """The API's `ReadAudit` over one connection, shared by the worker's threads."""

    def __init__(self, settings: Settings) -> None:
        self.db = SqlConnection(settings)
        self.lock = threading.Lock()
        with self.lock:
            self.db.create_tables(_ddl(self.db.is_sqlite))

    def record(self, entry: ReadRecord) -> None:
        with self.lock, self.db.transaction() as cur:
            cur.execute(self.db.sql(f"INSERT INTO read_audit ({COLUMNS}) "
                                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"),
                        (_text(entry.at), entry.key_id, entry.role, entry.org_id,
                         entry.learner_id, entry.route, entry.method, entry.status))

    def entries(self, *, learner_id: str | None = None, key_id: str | None = None,
                since: datetime | None = None, limit: int = 100) -> list[ReadRecord]:
        where, params = [], []
        for clause, value in (("learner_id = ?", learner_id), ("key_id = ?", key_id),
                              ("at >= ?", _text(since) if since else None)):
            if value is not None:
                where.append(clause)
                params.append(value)
        sql = (f"SELECT {COLUMNS} FROM read_audit"
               + (" WHERE " + " AND ".join(where) if where else "")
               + " ORDER BY id DESC LIMIT ?")
        with self.lock:
            rows = self.db.query(sql, [*params, limit])
        return [_record(row) for row in rows]

    def close(self) -> None:
        self.db.close()


def _record(row: tuple[Any, ...]) -> ReadRecord:
    at = datetime.strptime(row[0], TIME_FORMAT).replace(tzinfo=UTC)
    return ReadRecord(at=at, key_id=row[1], role=row[2], org_id=row[3], learner_id=row[4],
                      route=row[5], method=row[6], status=int(row[7]))
