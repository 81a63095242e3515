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

from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor, SQLiteDatastore
from psycopg.sql import SQL, Identifier

from domain.application import FactKey
from domain.parking import ParkingChanges
from infra.metrics import WRITER_LOCK_WAIT
from infra.parking_tables import PostgresParking, SQLiteParking

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
        notification_ids = super()._insert_events(c, stored_events, **kwargs)
        c.executemany(
            f"INSERT INTO {self.fact_keys_table} VALUES (?,?,?,?)",
            [(k.event_id.hex, k.originator_id.hex, k.originator_version, k.digest)
             for k in fact_keys],
        )
        if parking:
            self._write_parking(c, parking)
        return notification_ids

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
        self._insert_keys = SQL(
            "INSERT INTO {} SELECT * FROM unnest(%s::uuid[], %s::uuid[], %s::bigint[], %s::text[])"
        ).format(table)
        self._select_keys = SQL("SELECT * FROM {} WHERE event_id = ANY(%s)").format(table)
        # The library sends events as one array of a composite type in text format, which
        # psycopg escapes byte by byte (a third of the insert time, profiled). Four typed
        # arrays as binary parameters carry the same rows without escaping.
        self._insert_events_binary = SQL(
            "INSERT INTO {} (originator_id, originator_version, topic, state) "
            "SELECT * FROM unnest(%b::uuid[], %b::bigint[], %b::text[], %b::bytea[]) "
            "RETURNING notification_id"
        ).format(SQL("{}.{}").format(
            Identifier(self.datastore.schema), Identifier(self.events_table_name)
        ))
        self._select_versions = SQL(
            "SELECT originator_id, MAX(originator_version) AS version FROM {} "
            "WHERE originator_id = ANY(%s) GROUP BY originator_id"
        ).format(SQL("{}.{}").format(
            Identifier(self.datastore.schema), Identifier(self.events_table_name)
        ))
        self._select_positions = SQL(
            "SELECT e.originator_id, e.originator_version, e.notification_id FROM {} e "
            "JOIN unnest(%s::uuid[], %s::bigint[]) AS k(oid, ver) "
            "ON e.originator_id = k.oid AND e.originator_version = k.ver"
        ).format(SQL("{}.{}").format(
            Identifier(self.datastore.schema), Identifier(self.events_table_name)
        ))

    def _insert_events(
        self, curs: Any, stored_events: Sequence[Any], *,
        fact_keys: Sequence[FactKey] = (), parking: ParkingChanges | None = None,
        **kwargs: Any,
    ) -> None:
        # Runs inside the library's insert transaction, before its table lock. Keys are
        # sorted so two writers claiming overlapping keys lock them in the same order.
        if fact_keys:
            keys = sorted(fact_keys, key=lambda k: k.event_id)
            # The library runs this in pipeline mode; sync at once so a key another writer
            # claimed surfaces here as IntegrityError (which the application retries)
            # instead of later as an opaque "pipeline aborted".
            with curs.connection.pipeline() as pipeline:
                curs.execute(self._insert_keys, (
                    [k.event_id for k in keys], [k.originator_id for k in keys],
                    [k.originator_version for k in keys], [k.digest for k in keys],
                ))
                pipeline.sync()
        if parking:
            self._write_parking(curs, parking)

    def _insert_stored_events(
        self, curs: Any, stored_events: Sequence[Any], **kwargs: Any
    ) -> None:
        self._lock_table(curs)  # as the library does: commit order = notification order
        self._notify_channel(curs)
        curs.execute(self._insert_events_binary, (
            [e.originator_id for e in stored_events],
            [e.originator_version for e in stored_events],
            [e.topic for e in stored_events],
            [e.state for e in stored_events],
        ))

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
        # so serialise it with an advisory lock held by a session of its own.
        lock_name = f"studyledger-ddl:{self.datastore.schema}.{self.events_table_name}"
        with self.datastore.get_connection() as conn:
            conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (lock_name,))
            try:
                super().create_table()
            finally:
                conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (lock_name,))

    def find_fact_keys(self, event_ids: Sequence[UUID]) -> dict[UUID, FactKey]:
        if not event_ids:
            return {}
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(self._select_keys, (list(event_ids),))
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
            curs.execute(self._select_versions, (list(stream_ids),))
            return {row["originator_id"]: row["version"] for row in curs.fetchall()}

    def positions_of(self, keys: Sequence[FactKey]) -> dict[UUID, int]:
        if not keys:
            return {}
        by_stream = {(k.originator_id, k.originator_version): k.event_id for k in keys}
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(self._select_positions, (
                [k.originator_id for k in keys], [k.originator_version for k in keys],
            ))
            return {
                by_stream[(row["originator_id"], row["originator_version"])]:
                    row["notification_id"]
                for row in curs.fetchall()
            }
