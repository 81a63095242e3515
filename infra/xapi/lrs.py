"""The LRS behind /xapi: statements appended to their own log, projected before answering.

Writes are synchronous: a POST or PUT appends its statements (one transaction), then brings
the query tables up to the end of the statement log before it answers, so a client reads its
own writes. `X-Experience-API-Consistent-Through` is the projection watermark: the current
time when the tables have every logged statement, else the `stored` of the last projected
one; and never at or past the `stored` of a write of this process still in flight (stamped,
not yet committed). A write in flight in another API worker process is not seen: its
statements may become visible up to its transaction's length after the watermark passed
their `stored` (milliseconds; `api_workers` is 1 by default).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore

from api.xapi.backend import StatementPage, StatementQuery
from domain.application import StudyLedger
from domain.xapi.application import XapiStatements
from domain.xapi.attachments import AttachmentPart
from domain.xapi.bridge import load_mapping
from domain.xapi.documents import DocumentKey, StoredDocument
from domain.xapi.formats import parse_timestamp
from infra.settings import Settings
from infra.xapi.attachment_store import AttachmentStore
from infra.xapi.bridge_runner import BridgeRunner
from infra.xapi.document_tables import DocumentTables
from infra.xapi.statement_tables import StatementTables, decode

PROJECT_PAGE = 1000
log = logging.getLogger("studyledger.xapi")


class XapiSQLiteRecorder(SQLiteApplicationRecorder):
    """The statement log's own table in the SQLite file (eventsourcing names every SQLite
    application's table `stored_events`; PostgreSQL ones get `xapi_events` by name)."""

    def __init__(self, datastore: SQLiteDatastore,
                 events_table_name: str = "xapi_stored_events") -> None:
        super().__init__(datastore, events_table_name)


class SqlLrs:
    """Built by `infra.bootstrap.build_lrs`, which gives it its event store environment."""

    def __init__(self, settings: Settings, *, env: dict[str, str],
                 org_tree: Callable[[], list[tuple[str, str | None]]] | None = None,
                 clock: Callable[[], datetime] | None = None,
                 ledger: StudyLedger | None = None) -> None:
        self.app = XapiStatements(env=env)
        self.tables = StatementTables(settings)
        # One catch-up at a time in a process: two at once would both apply the same page
        # (harmless for the keyed rows) and could merge an activity definition out of order.
        self._catch_up_lock = threading.Lock()
        # `stored` of this process's writes between their stamp and their projection.
        self._in_flight: list[datetime] = []
        self._in_flight_lock = threading.Lock()
        self.bridge: BridgeRunner | None = None
        if settings.xapi_mapping and ledger is not None:
            self.bridge = BridgeRunner(load_mapping(settings.xapi_mapping), ledger, self.app,
                                       self.tables, clock or (lambda: datetime.now(UTC)))
        self.documents = DocumentTables(settings)
        self.attachments = AttachmentStore(settings)
        self.org_tree = org_tree or (lambda: [])
        self.clock = clock or (lambda: datetime.now(UTC))

    # -- writing -------------------------------------------------------------------

    def accept(self, statements: Sequence[dict[str, Any]], *, authority: dict[str, Any],
               org_id: str, attachments: Sequence[AttachmentPart] = ()) -> list[str]:
        with self._in_flight_lock:
            stored = self.clock()
            self._in_flight.append(stored)
        try:
            ids, _ = self.app.accept(statements, stored=stored, authority=authority,
                                     org_id=org_id, maybe_stored=self.tables.known_ids)
            self.attachments.put(attachments)
            self.catch_up()
        finally:
            with self._in_flight_lock:
                self._in_flight.remove(stored)
        self.run_bridge()
        return ids

    def run_bridge(self) -> None:
        """Turn the new statements the mapping counts into learner facts. A failure here does
        not undo the statements (they are stored): it is logged, and the next write (or
        `run_bridge`) takes the same statements again from the bridge's position."""
        if self.bridge is None:
            return
        try:
            self.bridge.run()
        except Exception:  # noqa: BLE001 - the statements are stored; the bridge retries
            log.exception("the xAPI bridge failed; it retries from its position")

    def attachment_contents(self, hashes: Sequence[str]) -> list[AttachmentPart]:
        return self.attachments.get(hashes)

    def catch_up(self) -> int:
        """Project every logged statement not yet in the tables; how many were applied."""
        with self._catch_up_lock:
            return self._catch_up()

    def _catch_up(self) -> int:
        applied = 0
        while True:
            after = self.tables.position()
            page = self.app.recorder.select_notifications(start=after + 1, limit=PROJECT_PAGE)
            if not page:
                return applied
            items = []
            for notification in page:
                event: Any = self.app.mapper.to_domain_event(notification)
                items.append(decode(notification.id, {"statement": event.statement,
                                                      "org_id": event.org_id}))
            self.tables.apply(items)
            applied += len(items)

    def replay(self) -> int:
        """Empty the query tables and rebuild them from the statement log."""
        self.tables.reset()
        return self.catch_up()

    # -- reading -------------------------------------------------------------------

    def statement(self, statement_id: str, orgs: Sequence[str], *, voided: bool
                  ) -> tuple[str, str] | None:
        return self.tables.statement(statement_id, orgs, voided=voided)

    def query(self, query: StatementQuery) -> StatementPage:
        through = query.through_seq if query.through_seq is not None else self.tables.max_seq()
        rows = self.tables.find(replace(query, through_seq=through))
        more = len(rows) > query.limit
        rows = rows[:query.limit]
        return StatementPage([body for _, body in rows],
                             rows[-1][0] if more and rows else None, through)

    def consistent_through(self) -> datetime:
        with self._in_flight_lock:
            now = self.clock()
            earliest = min(self._in_flight, default=None)
        through = now
        if self.tables.position() < (self.app.recorder.max_notification_id() or 0):
            last = self.tables.last_stored()
            through = (parse_timestamp(last) if last else None) or datetime(1970, 1, 1,
                                                                            tzinfo=UTC)
        if earliest is not None:  # just before the earliest write not yet visible
            through = min(through, earliest - timedelta(milliseconds=1))
        return through

    def subtree(self, org_id: str) -> list[str]:
        children: dict[str, list[str]] = {}
        for child, parent in self.org_tree():
            if parent is not None:
                children.setdefault(parent, []).append(child)
        found, todo = [org_id], [org_id]
        while todo:
            for child in children.get(todo.pop(), []):
                if child not in found:
                    found.append(child)
                    todo.append(child)
        return found

    # -- documents -----------------------------------------------------------------

    def document(self, key: DocumentKey) -> StoredDocument | None:
        return self.documents.document(key)

    def document_ids(self, key: DocumentKey, since: str | None) -> list[str]:
        return self.documents.ids(key, since)

    def write_document(self, key: DocumentKey, content_type: str, body: bytes, *, merge: bool,
                       if_match: str | None, if_none_match: str | None) -> None:
        self.documents.write(key, content_type, body, merge=merge, if_match=if_match,
                             if_none_match=if_none_match)

    def delete_documents(self, key: DocumentKey, *, every: bool, if_match: str | None) -> None:
        self.documents.delete(key, every=every, if_match=if_match)

    def activity_definition(self, orgs: Sequence[str], activity_id: str
                            ) -> dict[str, Any] | None:
        return self.tables.definition(orgs, activity_id)

    def close(self) -> None:
        self.attachments.close()
        self.documents.close()
        self.tables.close()
        self.app.close()
