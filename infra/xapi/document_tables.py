"""xAPI documents (state, activity profile, agent profile) as rows, written under ETags.

One row per document; the parts of its key a resource does not use are ''. A write reads
the current row and writes the new one in one transaction (SQLite BEGIN IMMEDIATE holds the
write lock; PostgreSQL locks the row, or meets the primary key if two create it at once), so
an If-Match checked is still true when the write lands.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

from domain.errors import StoreUnavailableError
from domain.xapi.documents import (
    DocumentConflictError,
    DocumentKey,
    StoredDocument,
    check_preconditions,
    etag_of,
    merged_body,
)
from infra.settings import Settings
from infra.store.sql_connection import SqlConnection

KEY = ("kind", "org_id", "activity_id", "agent_key", "registration", "doc_id")


def ddl(blob: str) -> list[str]:
    return [
        "CREATE TABLE IF NOT EXISTS xapi_documents (kind TEXT NOT NULL, org_id TEXT NOT NULL, "
        "activity_id TEXT NOT NULL, agent_key TEXT NOT NULL, registration TEXT NOT NULL, "
        f"doc_id TEXT NOT NULL, content_type TEXT NOT NULL, body {blob} NOT NULL, "
        "etag TEXT NOT NULL, updated TEXT NOT NULL, PRIMARY KEY (kind, org_id, activity_id, "
        "agent_key, registration, doc_id))",
    ]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class DocumentTables:
    def __init__(self, settings: Settings) -> None:
        self.db = SqlConnection(settings)
        self.lock = threading.Lock()
        with self.lock:
            self.db.create_tables(ddl("BLOB" if settings.is_sqlite else "BYTEA"))

    def _where(self, names: tuple[str, ...]) -> str:
        return " AND ".join(f"{name} = ?" for name in names)

    def _read(self, cur: Any, key: DocumentKey, *, for_update: bool) -> StoredDocument | None:
        lock = "" if self.db.is_sqlite or not for_update else " FOR UPDATE"
        cur.execute(self.db.sql(f"SELECT content_type, body, etag, updated FROM xapi_documents "
                                f"WHERE {self._where(KEY)}{lock}"), key.values())
        row = cur.fetchone()
        if row is None:
            return None
        return StoredDocument(str(row[0]), bytes(row[1]), str(row[2]), str(row[3]))

    def document(self, key: DocumentKey) -> StoredDocument | None:
        with self.lock, self.db.transaction() as cur:
            return self._read(cur, key, for_update=False)

    def ids(self, key: DocumentKey, since: str | None) -> list[str]:
        names = KEY[:-1]
        params: list[Any] = list(key.values()[:-1])
        where = self._where(names)
        if since is not None:
            where += " AND updated > ?"
            params.append(since)
        with self.lock:
            rows = self.db.query(f"SELECT doc_id FROM xapi_documents WHERE {where} "
                                 "ORDER BY doc_id", params)
        return [str(row[0]) for row in rows]

    def write(self, key: DocumentKey, content_type: str, body: bytes, *, merge: bool,
              if_match: str | None, if_none_match: str | None) -> None:
        """PUT (replace) or POST (merge) one document under its preconditions."""
        try:
            with self.lock, self.db.transaction() as cur:
                existing = self._read(cur, key, for_update=True)
                check_preconditions(existing, if_match=if_match, if_none_match=if_none_match,
                                    put=not merge)
                if merge:
                    content_type, body = merged_body(existing, content_type, body)
                cur.execute(self.db.sql(f"DELETE FROM xapi_documents WHERE {self._where(KEY)}"),
                            key.values())
                cur.execute(self.db.sql("INSERT INTO xapi_documents VALUES "
                                        "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
                            (*key.values(), content_type, body, etag_of(body), _now()))
        except StoreUnavailableError:
            raise
        except Exception as exc:
            if type(exc).__name__ in ("IntegrityError", "UniqueViolation"):
                raise DocumentConflictError("the document was written by another request at "
                                            "the same time; read it and try again") from exc
            raise

    def delete(self, key: DocumentKey, *, every: bool, if_match: str | None) -> None:
        """Delete one document (under If-Match), or with `every` all of the key without id."""
        with self.lock, self.db.transaction() as cur:
            if every:
                cur.execute(self.db.sql(
                    f"DELETE FROM xapi_documents WHERE {self._where(KEY[:-1])}"),
                    key.values()[:-1])
                return
            existing = self._read(cur, key, for_update=True)
            if if_match is not None:
                check_preconditions(existing, if_match=if_match, if_none_match=None, put=False)
            cur.execute(self.db.sql(f"DELETE FROM xapi_documents WHERE {self._where(KEY)}"),
                        key.values())

    def close(self) -> None:
        self.db.close()
