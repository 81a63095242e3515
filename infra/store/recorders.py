"""Event recorders that also keep the fact-key index, in the same transaction as the events.

The index maps a fact's event id (from its source and external id) to the stream and version
that hold it, plus its content digest. Its primary key makes "one fact, one record" a
database guarantee across every learner and every writer process, and lets a resend be
answered as a duplicate (same digest) or a conflict (other digest) with one lookup per batch.
"""

from __future__ import annotations

import fcntl
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from uuid import UUID

from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor, SQLiteDatastore
from eventsourcing.utils import retry
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Composed, Identifier

from domain.application import FactKey, LogRow, TopicLogRow
from domain.parking import ParkingChanges
from infra.ops.metrics import WRITER_LOCK_WAIT
from infra.store.parking_tables import PostgresParking, SQLiteParking
from infra.store.pg_arrays import int_array, uuid_array
from infra.store.sql_connection import ddl_lock_name, run_ddl

# SQLite caps the host parameters of one statement; stay well under it.
_CHUNK = 500


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class SQLiteFactKeyRecorder(SQLiteParking, SQLiteApplicationRecorder):
    def __init__(self, datastore: SQLiteDatastore, events_table_name: str = "stored_events"):
        self.fact_keys_table = "fact_keys"  # before super(): it builds the DDL
        super().__init__(datastore, events_table_name)
        self._lock_path = f"{datastore.pool.db_name}.writer.lock"
        self._in_memory = ":memory:" in datastore.pool.db_name or "mode=memory" in (
            datastore.pool.db_name)

    @contextmanager
    def exclusive_writer(self) -> Iterator[None]:
        """One batch writer at a time across processes (API workers, consumers, ingests):
        a batch reads stream versions, applies and saves; a second process writing the same
        streams in between would make every attempt conflict. An OS file lock beside the
        database file serialises whole batches."""
        if self._in_memory:
            yield
            return
        with open(self._lock_path, "a") as handle:
            waited = time.perf_counter()
            fcntl.flock(handle, fcntl.LOCK_EX)
            WRITER_LOCK_WAIT.observe(time.perf_counter() - waited)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            f"CREATE TABLE IF NOT EXISTS {self.fact_keys_table} ("
            "event_id TEXT PRIMARY KEY, originator_id TEXT NOT NULL, "
            "originator_version INTEGER NOT NULL, digest TEXT NOT NULL) WITHOUT ROWID",
            *self.parking_statements(),
        ]

    def _insert_events(
        self,
        c: SQLiteCursor,
        stored_events: Sequence[Any],
        *,
        fact_keys: Sequence[FactKey] = (),
        parking: ParkingChanges | None = None,
        **kwargs: Any,
    ) -> Sequence[int] | None:
        notification_ids = self._insert_event_rows(c, stored_events)
        c.executemany(
            f"INSERT INTO {self.fact_keys_table} VALUES (?,?,?,?)",
            [(k.event_id.hex, k.originator_id.hex, k.originator_version, k.digest)
             for k in fact_keys],
        )
        if parking:
            self._write_parking(c, parking)
        return notification_ids

    def _insert_event_rows(self, c: SQLiteCursor, stored_events: Sequence[Any]) -> list[int]:
        """One executemany instead of the library's execute per event (to read each
        lastrowid). Inside this write transaction nothing else inserts, and SQLite gives
        each new row the largest rowid plus one, so the batch holds the last len(events)
        rowids in insertion order; the first is checked, and looked up row by row if not."""
        rows = [(e.originator_id.hex if isinstance(e.originator_id, UUID) else e.originator_id,
                 e.originator_version, e.topic, e.state) for e in stored_events]
        if not rows:
            return []
        c.executemany(self.insert_events_statement, rows)
        c.execute(f"SELECT MAX(rowid) FROM {self.events_table_name}")
        last = c.fetchone()[0]
        first = last - len(rows) + 1
        c.execute(f"SELECT originator_id, originator_version FROM {self.events_table_name} "
                  "WHERE rowid = ?", (first,))
        found = c.fetchone()
        if found is not None and (found[0], found[1]) == rows[0][:2]:
            return list(range(first, last + 1))
        ids = []
        for row in rows:
            c.execute(f"SELECT rowid FROM {self.events_table_name} "
                      "WHERE originator_id = ? AND originator_version = ?", row[:2])
            ids.append(c.fetchone()[0])
        return ids

    def find_fact_keys(self, event_ids: Sequence[UUID]) -> dict[UUID, FactKey]:
        found: dict[UUID, FactKey] = {}
        with self.datastore.transaction(commit=False) as c:
            for chunk in _chunks(list(event_ids)):
                c.execute(
                    f"SELECT * FROM {self.fact_keys_table} "
                    f"WHERE event_id IN ({','.join('?' * len(chunk))})",
                    [event_id.hex for event_id in chunk],
                )
                for row in c.fetchall():
                    key = FactKey(
                        UUID(row["event_id"]), UUID(row["originator_id"]),
                        row["originator_version"], row["digest"],
                    )
                    found[key.event_id] = key
        return found

    def current_versions(self, stream_ids: Sequence[UUID]) -> dict[UUID, int]:
        versions: dict[UUID, int] = {}
        with self.datastore.transaction(commit=False) as c:
            for chunk in _chunks(list(stream_ids)):
                c.execute(
                    f"SELECT originator_id, MAX(originator_version) FROM {self.events_table_name} "
                    f"WHERE originator_id IN ({','.join('?' * len(chunk))}) "
                    "GROUP BY originator_id",
                    [stream_id.hex for stream_id in chunk],
                )
                versions.update((UUID(row[0]), row[1]) for row in c.fetchall())
        return versions

    def stream_events(self, stream_ids: Sequence[UUID]) -> list[StoredEvent]:
        events: list[StoredEvent] = []
        with self.datastore.transaction(commit=False) as c:
            for chunk in _chunks(sorted(stream_ids)):
                c.execute(
                    f"SELECT originator_id, originator_version, topic, state "
                    f"FROM {self.events_table_name} "
                    f"WHERE originator_id IN ({','.join('?' * len(chunk))}) "
                    "ORDER BY originator_id, originator_version",
                    [stream_id.hex for stream_id in chunk],
                )
                events.extend(StoredEvent(UUID(row[0]), row[1], row[2], row[3])
                              for row in c.fetchall())
        return events

    def streams_written_after(self, position: int) -> list[UUID]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT DISTINCT originator_id FROM {self.events_table_name} "
                      "WHERE rowid > ?", (position,))
            return [UUID(row[0]) for row in c.fetchall()]

    def log_rows(self, after: int, limit: int) -> list[LogRow]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT rowid, originator_id, originator_version, state "
                      f"FROM {self.events_table_name} WHERE rowid > ? ORDER BY rowid LIMIT ?",
                      (after, limit))
            return [(row[0], UUID(row[1]), row[2], row[3]) for row in c.fetchall()]

    def stream_rows(self, through: int, after: tuple[UUID, int], limit: int
                    ) -> list[TopicLogRow]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT rowid, originator_id, originator_version, topic, state "
                      f"FROM {self.events_table_name} WHERE rowid <= ? AND "
                      "(originator_id, originator_version) > (?, ?) "
                      "ORDER BY originator_id, originator_version LIMIT ?",
                      (through, after[0].hex, after[1], limit))
            return [(row[0], UUID(row[1]), row[2], row[3], row[4]) for row in c.fetchall()]

    def topic_rows(self, topics: Sequence[str], through: int) -> list[TopicLogRow]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT rowid, originator_id, originator_version, topic, state "
                      f"FROM {self.events_table_name} WHERE topic IN "
                      f"({', '.join('?' * len(topics))}) AND rowid <= ? ORDER BY rowid",
                      (*topics, through))
            return [(row[0], UUID(row[1]), row[2], row[3], row[4]) for row in c.fetchall()]

    def positions_of(self, keys: Sequence[FactKey]) -> dict[UUID, int]:
        positions: dict[UUID, int] = {}
        with self.datastore.transaction(commit=False) as c:
            for key in keys:
                c.execute(
                    f"SELECT rowid FROM {self.events_table_name} "
                    "WHERE originator_id=? AND originator_version=?",
                    (key.originator_id.hex, key.originator_version),
                )
                row = c.fetchone()
                if row is not None:
                    positions[key.event_id] = row[0]
        return positions


class PostgresFactKeyRecorder(PostgresParking, PostgresApplicationRecorder):
    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"):
        super().__init__(datastore, events_table_name=events_table_name)
        self.fact_keys_table = events_table_name.removesuffix("_events") + "_fact_keys"
        self.check_identifier_length(self.fact_keys_table)
        table = SQL("{}.{}").format(
            Identifier(self.datastore.schema), Identifier(self.fact_keys_table)
        )
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {} (event_id uuid PRIMARY KEY, "
                "originator_id uuid NOT NULL, originator_version bigint NOT NULL, "
                "digest text NOT NULL)"
            ).format(table)
        )
        self.sql_create_statements.extend(self.parking_statements())
        self._copy_keys = SQL(
            "COPY {} (event_id, originator_id, originator_version, digest) "
            "FROM STDIN (FORMAT BINARY)").format(table)
        self._select_keys = SQL("SELECT * FROM {} WHERE event_id = ANY(%s::uuid[])").format(
            table)
        self._prepare_event_queries(SQL("{}.{}").format(
            Identifier(self.datastore.schema), Identifier(self.events_table_name)))

    def _prepare_event_queries(self, events: Composed) -> None:
        """The statements this recorder runs on the events table beside the library's."""
        self._copy_events = SQL(
            "COPY {} (originator_id, originator_version, topic, state) "
            "FROM STDIN (FORMAT BINARY)").format(events)
        self._select_last_id = SQL("SELECT MAX(notification_id) AS last FROM {}").format(events)
        self._select_row_at = SQL(
            "SELECT originator_id, originator_version FROM {} WHERE notification_id = %s"
        ).format(events)
        self._select_versions = SQL(
            "SELECT originator_id, MAX(originator_version) AS version FROM {} "
            "WHERE originator_id = ANY(%s::uuid[]) GROUP BY originator_id").format(events)
        self._select_stream_events = SQL(
            "SELECT originator_id, originator_version, topic, state FROM {} "
            "WHERE originator_id = ANY(%s::uuid[]) ORDER BY originator_id, originator_version"
        ).format(events)
        self._select_written_after = SQL(
            "SELECT DISTINCT originator_id FROM {} WHERE notification_id > %s").format(events)
        self._select_log_rows = SQL(
            "SELECT notification_id, originator_id, originator_version, state FROM {} "
            "WHERE notification_id > %s ORDER BY notification_id LIMIT %s").format(events)
        self._select_stream_rows = SQL(
            "SELECT notification_id, originator_id, originator_version, topic, state FROM {} "
            "WHERE notification_id <= %s AND (originator_id, originator_version) > (%s, %s) "
            "ORDER BY originator_id, originator_version LIMIT %s").format(events)
        self._select_topic_rows = SQL(
            "SELECT notification_id, originator_id, originator_version, topic, state FROM {} "
            "WHERE topic = ANY(%s) AND notification_id <= %s ORDER BY notification_id"
        ).format(events)
        # A join on arrays: run unprepared, planned for the arrays at hand, since a generic
        # plan made while the table was small could be kept as it grows (infra.views.writer).
        self._select_positions = SQL(
            "SELECT e.originator_id, e.originator_version, e.notification_id FROM {} e "
            "JOIN unnest(%s::uuid[], %s::bigint[]) AS k(oid, ver) "
            "ON e.originator_id = k.oid AND e.originator_version = k.ver").format(events)

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(
        self, stored_events: Sequence[StoredEvent], *,
        fact_keys: Sequence[FactKey] = (), parking: ParkingChanges | None = None,
        **kwargs: Any,
    ) -> Sequence[int] | None:
        """The events, their fact keys and the parking changes in one transaction, the rows
        sent with binary COPY (the library sends an INSERT of arrays in pipeline mode,
        where COPY cannot run). As the library does, the events table is locked first, so
        notification ids are handed out in commit order."""
        with self.datastore.transaction(commit=True) as curs:
            if fact_keys:
                # Sorted, so two writers claiming overlapping keys lock them in one order; a
                # key another writer holds raises IntegrityError here (the batch retries).
                keys = sorted(fact_keys, key=lambda k: k.event_id)
                with curs.copy(self._copy_keys) as copy:
                    copy.set_types(["uuid", "uuid", "int8", "text"])
                    for k in keys:
                        copy.write_row((k.event_id, k.originator_id, k.originator_version,
                                        k.digest))
            if parking:
                self._write_parking(curs, parking)
            if not stored_events:
                return []
            self._lock_table(curs)
            self._notify_channel(curs)
            with curs.copy(self._copy_events) as copy:
                copy.set_types(["uuid", "int8", "text", "bytea"])
                for e in stored_events:
                    copy.write_row((e.originator_id, e.originator_version, e.topic, e.state))
            return self._notification_ids(curs, stored_events)

    def _notification_ids(self, curs: Any, stored_events: Sequence[StoredEvent]) -> list[int]:
        """COPY returns no ids. Under the table lock nothing else draws from the events'
        sequence, so the batch holds the last len(events) ids, in the order sent; the first
        is checked against the row it should be, and all are looked up if it is not."""
        curs.execute(self._select_last_id)
        last = curs.fetchone()["last"]
        first = last - len(stored_events) + 1
        curs.execute(self._select_row_at, (first,))
        row = curs.fetchone()
        head = stored_events[0]
        if row is not None and (row["originator_id"], row["originator_version"]) == (
                head.originator_id, head.originator_version):
            return list(range(first, last + 1))
        curs.execute(self._select_positions, (
            [e.originator_id for e in stored_events],
            [e.originator_version for e in stored_events]), prepare=False)
        found = {(r["originator_id"], r["originator_version"]): r["notification_id"]
                 for r in curs.fetchall()}
        return [found[(e.originator_id, e.originator_version)] for e in stored_events]

    @contextmanager
    def exclusive_writer(self) -> Iterator[None]:
        """One batch writer at a time across processes (see the SQLite recorder): a session
        advisory lock, held on a pooled connection of its own for the whole batch."""
        lock_name = f"studyledger-writer:{self.datastore.schema}.{self.events_table_name}"
        with self.datastore.get_connection() as conn:
            waited = time.perf_counter()
            conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (lock_name,))
            WRITER_LOCK_WAIT.observe(time.perf_counter() - waited)
            try:
                yield
            finally:
                conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (lock_name,))

    def create_table(self) -> None:
        # Several processes (API workers, consumers) may start at once on an empty schema;
        # the library's DDL is not safe to run concurrently ("tuple concurrently updated"),
        # so serialise it with an advisory lock held by a session of its own: the lock every
        # creation of tables in this schema takes (sql_connection.ddl_lock_name).
        lock_name = ddl_lock_name(self.datastore.schema)
        with self.datastore.get_connection() as conn:
            conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (lock_name,))
            try:
                super().create_table()
            finally:
                conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (lock_name,))

    def _create_table(self, curs: Any) -> None:
        # An existing index is skipped without locking its table (sql_connection.run_ddl).
        run_ddl(curs, [statement.as_string() for statement in self.sql_create_statements
                       if "CREATE TYPE" not in statement.as_string()],
                schema=self.datastore.schema)

    def find_fact_keys(self, event_ids: Sequence[UUID]) -> dict[UUID, FactKey]:
        if not event_ids:
            return {}
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(self._select_keys, (uuid_array(event_ids),))
            return {
                row["event_id"]: FactKey(
                    row["event_id"], row["originator_id"], row["originator_version"],
                    row["digest"],
                )
                for row in curs.fetchall()
            }

    def current_versions(self, stream_ids: Sequence[UUID]) -> dict[UUID, int]:
        if not stream_ids:
            return {}
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(self._select_versions, (uuid_array(stream_ids),))
            return {row["originator_id"]: row["version"] for row in curs.fetchall()}

    def stream_events(self, stream_ids: Sequence[UUID]) -> list[StoredEvent]:
        if not stream_ids:
            return []
        events: list[StoredEvent] = []
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as c:
            for chunk in _chunks(sorted(stream_ids)):
                c.execute(self._select_stream_events, (uuid_array(chunk),))
                events.extend(StoredEvent(stream, version, topic, bytes(state))
                              for stream, version, topic, state in c.fetchall())
        return events

    def streams_written_after(self, position: int) -> list[UUID]:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(self._select_written_after, (position,))
            return [row["originator_id"] for row in curs.fetchall()]

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def log_rows(self, after: int, limit: int) -> list[LogRow]:
        # Plain tuples: the library's dict rows and Notification objects were a tenth of a
        # profiled replay.
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as c:
            c.execute(self._select_log_rows, (after, limit), prepare=True)
            return [(position, stream, version, bytes(state))
                    for position, stream, version, state in c.fetchall()]

    def stream_rows(self, through: int, after: tuple[UUID, int], limit: int
                    ) -> list[TopicLogRow]:
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as c:
            c.execute(self._select_stream_rows, (through, after[0], after[1], limit),
                      prepare=True)
            return [(position, stream, version, topic, bytes(state))
                    for position, stream, version, topic, state in c.fetchall()]

    def topic_rows(self, topics: Sequence[str], through: int) -> list[TopicLogRow]:
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as c:
            c.execute(self._select_topic_rows, (list(topics), through))
            return [(position, stream, version, row_topic, bytes(state))
                    for position, stream, version, row_topic, state in c.fetchall()]

    def positions_of(self, keys: Sequence[FactKey]) -> dict[UUID, int]:
        if not keys:
            return {}
        by_stream = {(k.originator_id, k.originator_version): k.event_id for k in keys}
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(self._select_positions, (
                uuid_array(k.originator_id for k in keys),
                int_array(k.originator_version for k in keys),
            ), prepare=False)
            return {
                by_stream[(row["originator_id"], row["originator_version"])]:
                    row["notification_id"]
                for row in curs.fetchall()
            }
