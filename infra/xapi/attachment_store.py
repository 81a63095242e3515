"""Attachment contents, content-addressed by SHA-2: kept as rows, never in the statement facts.

The statement fact holds the attachment's metadata and hash; the bytes (possibly large) are
here, once per hash whoever sent them. They are written after their statements are stored,
so a refused request leaves nothing behind.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from domain.xapi.attachments import AttachmentPart
from infra.settings import Settings
from infra.store.sql_connection import SqlConnection


class AttachmentStore:
    def __init__(self, settings: Settings) -> None:
        self.db = SqlConnection(settings)
        self.lock = threading.Lock()
        blob = "BLOB" if settings.is_sqlite else "BYTEA"
        # Through the schema's DDL lock, as every table: processes that start together on
        # an empty schema otherwise race on the catalog ("tuple concurrently updated").
        self.db.create_tables(["CREATE TABLE IF NOT EXISTS xapi_attachments (sha2 TEXT "
                               f"PRIMARY KEY, content_type TEXT NOT NULL, content {blob} "
                               "NOT NULL)"])

    def put(self, parts: Sequence[AttachmentPart]) -> None:
        if not parts:
            return
        with self.lock, self.db.transaction() as cur:
            for part in parts:
                cur.execute(self.db.sql("INSERT INTO xapi_attachments VALUES (?, ?, ?) "
                                        "ON CONFLICT DO NOTHING"),
                            (part.sha2, part.content_type, part.content))

    def get(self, hashes: Sequence[str]) -> list[AttachmentPart]:
        if not hashes:
            return []
        marks = ",".join("?" * len(hashes))
        with self.lock:
            rows = self.db.query(f"SELECT sha2, content_type, content FROM xapi_attachments "
                                 f"WHERE sha2 IN ({marks}) ORDER BY sha2", list(hashes))
        return [AttachmentPart(str(r[0]), str(r[1]), bytes(r[2])) for r in rows]

    def close(self) -> None:
        self.db.close()
