"""The parked-fact and dead-letter tables, beside the events, for SQLite and PostgreSQL.

Parking changes are written inside the batch's insert transaction (the recorders call
`_write_parking` from `_insert_events`), so a fact is either recorded or parked, never
both and never neither. Rows keep the fact's canonical JSON: a released fact is parsed
again and goes through exactly the same checks as a new one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg.sql import SQL, Identifier

from domain.errors import PrerequisiteMissingError
from domain.parking import DeadLetterRecord, ParkedFact, ParkingChanges
from infra.store.pg_arrays import text_array, uuid_array

_FACT_COLUMNS = ("event_id", "fact_text", "digest", "waits_for", "code", "field", "reason",
                 "channel", "scope", "origin", "parked_at")
_SQLITE_FACT_DDL = (
    "fact_text TEXT NOT NULL, digest TEXT NOT NULL, waits_for TEXT NOT NULL, "
    "code TEXT NOT NULL, field TEXT, reason TEXT NOT NULL, channel TEXT NOT NULL, "
    "scope TEXT, origin TEXT, parked_at TEXT NOT NULL")
_PG_FACT_DDL = (
    "fact_text text NOT NULL, digest text NOT NULL, waits_for text NOT NULL, "
    "code text NOT NULL, field text, reason text NOT NULL, channel text NOT NULL, "
    "scope text, origin text, parked_at timestamptz NOT NULL")


def _row_values(fact: ParkedFact, event_id: Any, parked_at: Any) -> tuple[Any, ...]:
    return (event_id, fact.fact_text, fact.digest, fact.waits_for, fact.code, fact.field,
            fact.reason, fact.channel, fact.scope, fact.origin, parked_at)


def _parked_of(row: Any, event_id: UUID, parked_at: datetime) -> ParkedFact:
    return ParkedFact(
        event_id=event_id, fact_text=row["fact_text"], digest=row["digest"],
        waits_for=row["waits_for"], code=row["code"], field=row["field"],
        reason=row["reason"], channel=row["channel"], scope=row["scope"],
        origin=row["origin"], parked_at=parked_at, seq=row["seq"])


class SQLiteParking:
    """Mixed into the SQLite recorder (which provides `datastore`)."""

    datastore: Any

    def parking_statements(self) -> list[str]:
        return [
            # AUTOINCREMENT: seq is the arrival order and is never reused.
            "CREATE TABLE IF NOT EXISTS parked_facts (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
            f"event_id TEXT NOT NULL UNIQUE, {_SQLITE_FACT_DDL})",
            "CREATE INDEX IF NOT EXISTS parked_facts_waits_for ON parked_facts (waits_for)",
            "CREATE INDEX IF NOT EXISTS parked_facts_parked_at ON parked_facts (parked_at)",
            "CREATE TABLE IF NOT EXISTS dead_letters (id INTEGER PRIMARY KEY AUTOINCREMENT, "
            f"seq INTEGER, event_id TEXT NOT NULL, {_SQLITE_FACT_DDL}, dead_at TEXT NOT NULL, "
            "published INTEGER NOT NULL DEFAULT 0, resolved INTEGER NOT NULL DEFAULT 0)",
        ]

    def _write_parking(self, c: Any, changes: ParkingChanges, now: str | None = None) -> None:
        if changes.release:
            c.executemany("DELETE FROM parked_facts WHERE event_id = ?",
                          [(event_id.hex,) for event_id in changes.release])
        for fact in changes.park:
            c.execute(
                f"INSERT INTO parked_facts (seq, {', '.join(_FACT_COLUMNS)}) "
                f"VALUES (?, {', '.join('?' * len(_FACT_COLUMNS))})",
                (fact.seq, *_row_values(fact, fact.event_id.hex, fact.parked_at.isoformat())))
        dead_at = now or (changes.dead[0].parked_at.isoformat() if changes.dead else "")
        for fact in changes.dead:
            c.execute(
                f"INSERT INTO dead_letters (seq, {', '.join(_FACT_COLUMNS)}, dead_at) "
                f"VALUES (?, {', '.join('?' * len(_FACT_COLUMNS))}, ?)",
                (fact.seq, *_row_values(fact, fact.event_id.hex, fact.parked_at.isoformat()),
                 dead_at))

    def write_parking(self, changes: ParkingChanges) -> None:
        with self.datastore.transaction(commit=True) as c:
            self._write_parking(c, changes)

    def parked_count(self) -> int:
        with self.datastore.transaction(commit=False) as c:
            c.execute("SELECT count(*) FROM parked_facts")
            return int(c.fetchone()[0])

    def _select_parked(self, where: str, params: Sequence[Any], limit: int = -1
                       ) -> list[ParkedFact]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT * FROM parked_facts {where} ORDER BY seq LIMIT {int(limit)}",
                      list(params))
            return [_parked_of(row, UUID(row["event_id"]),
                               datetime.fromisoformat(row["parked_at"]))
                    for row in c.fetchall()]

    def find_parked(self, event_ids: Sequence[UUID]) -> dict[UUID, ParkedFact]:
        found: dict[UUID, ParkedFact] = {}
        for start in range(0, len(event_ids), 500):
            chunk = event_ids[start:start + 500]
            rows = self._select_parked(f"WHERE event_id IN ({','.join('?' * len(chunk))})",
                                       [e.hex for e in chunk])
            found |= {row.event_id: row for row in rows}
        return found

    def parked_waiting_for(self, keys: Sequence[str]) -> list[ParkedFact]:
        rows: list[ParkedFact] = []
        for start in range(0, len(keys), 500):
            chunk = keys[start:start + 500]
            rows += self._select_parked(f"WHERE waits_for IN ({','.join('?' * len(chunk))})",
                                        chunk)
        return sorted(rows, key=lambda row: row.seq or 0)

    def list_parked(self, limit: int) -> list[ParkedFact]:
        return self._select_parked("", [], limit)

    def expire_parked(self, parked_before: datetime, now: datetime) -> list[ParkedFact]:
        expired = self._select_parked("WHERE parked_at < ?", [parked_before.isoformat()])
        if expired:
            with self.datastore.transaction(commit=True) as c:
                self._write_parking(c, ParkingChanges(
                    release=[f.event_id for f in expired],
                    dead=[_timed_out(f, now) for f in expired]), now.isoformat())
        return expired

    def list_dead_letters(self, *, unpublished_channel: str | None = None,
                          unresolved: bool = False, limit: int = 1000
                          ) -> list[DeadLetterRecord]:
        where, params = ["1=1"], []
        if unpublished_channel is not None:
            where.append("published = 0 AND channel = ?")
            params.append(unpublished_channel)
        if unresolved:
            where.append("resolved = 0")
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT * FROM dead_letters WHERE {' AND '.join(where)} ORDER BY id "
                      f"LIMIT {int(limit)}", params)
            return [DeadLetterRecord(
                row["id"], _parked_of(row, UUID(row["event_id"]),
                                      datetime.fromisoformat(row["parked_at"])),
                datetime.fromisoformat(row["dead_at"]), bool(row["published"]),
                bool(row["resolved"])) for row in c.fetchall()]

    def mark_dead_letters(self, ids: Sequence[int], *, published: bool = False,
                          resolved: bool = False) -> None:
        column = "published" if published else "resolved"
        with self.datastore.transaction(commit=True) as c:
            c.executemany(f"UPDATE dead_letters SET {column} = 1 WHERE id = ?",
                          [(i,) for i in ids])


class PostgresParking:
    """Mixed into the PostgreSQL recorder (which provides `datastore`)."""

    datastore: Any
    events_table_name: str

    def _parking_table(self, name: str) -> Any:
        prefix = self.events_table_name.removesuffix("_events")
        return SQL("{}.{}").format(Identifier(self.datastore.schema),
                                   Identifier(f"{prefix}_{name}"))

    def parking_statements(self) -> list[Any]:
        parked, dead = self._parking_table("parked_facts"), self._parking_table("dead_letters")
        index_prefix = self.events_table_name.removesuffix("_events")
        return [
            SQL("CREATE TABLE IF NOT EXISTS {} (seq bigserial PRIMARY KEY, "
                "event_id uuid NOT NULL UNIQUE, " + _PG_FACT_DDL + ")").format(parked),
            SQL("CREATE INDEX IF NOT EXISTS {} ON {} (waits_for)").format(
                Identifier(f"{index_prefix}_parked_waits_for"), parked),
            SQL("CREATE INDEX IF NOT EXISTS {} ON {} (parked_at)").format(
                Identifier(f"{index_prefix}_parked_at"), parked),
            SQL("CREATE TABLE IF NOT EXISTS {} (id bigserial PRIMARY KEY, seq bigint, "
                "event_id uuid NOT NULL, " + _PG_FACT_DDL + ", dead_at timestamptz NOT NULL, "
                "published boolean NOT NULL DEFAULT false, "
                "resolved boolean NOT NULL DEFAULT false)").format(dead),
        ]

    def _write_parking(self, curs: Any, changes: ParkingChanges,
                       now: datetime | None = None) -> None:
        parked, dead = self._parking_table("parked_facts"), self._parking_table("dead_letters")
        columns = SQL(", ").join(Identifier(c) for c in _FACT_COLUMNS)
        holes = SQL(", ").join(SQL("%s") for _ in _FACT_COLUMNS)
        if changes.release:
            curs.execute(SQL("DELETE FROM {} WHERE event_id = ANY(%s::uuid[])").format(parked),
                         (uuid_array(changes.release),))
        # executemany: one round trip for many rows, in order (new rows take their seq,
        # the arrival order, from the table's sequence in this order).
        new = [_row_values(f, f.event_id, f.parked_at) for f in changes.park if f.seq is None]
        again = [(f.seq, *_row_values(f, f.event_id, f.parked_at))
                 for f in changes.park if f.seq is not None]
        if new:
            curs.executemany(SQL("INSERT INTO {} ({}) VALUES ({})").format(
                parked, columns, holes), new)
        if again:
            curs.executemany(SQL("INSERT INTO {} (seq, {}) VALUES (%s, {})").format(
                parked, columns, holes), again)
        if changes.dead:
            curs.executemany(SQL("INSERT INTO {} (seq, {}, dead_at) VALUES (%s, {}, %s)").format(
                dead, columns, holes),
                [(f.seq, *_row_values(f, f.event_id, f.parked_at), now or f.parked_at)
                 for f in changes.dead])

    def write_parking(self, changes: ParkingChanges) -> None:
        with self.datastore.transaction(commit=True) as curs:
            self._write_parking(curs, changes)

    def parked_count(self) -> int:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(SQL("SELECT count(*) AS n FROM {}").format(
                self._parking_table("parked_facts")))
            return int(curs.fetchone()["n"])

    def _select_parked(self, where: Any, params: Sequence[Any], limit: int | None = None
                       ) -> list[ParkedFact]:
        query = SQL("SELECT * FROM {} {} ORDER BY seq").format(
            self._parking_table("parked_facts"), where)
        if limit is not None:
            query = query + SQL(" LIMIT {}").format(int(limit))
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(query, params)
            return [_parked_of(row, row["event_id"], row["parked_at"])
                    for row in curs.fetchall()]

    def find_parked(self, event_ids: Sequence[UUID]) -> dict[UUID, ParkedFact]:
        rows = self._select_parked(SQL("WHERE event_id = ANY(%s::uuid[])"),
                                   (uuid_array(event_ids),))
        return {row.event_id: row for row in rows}

    def parked_waiting_for(self, keys: Sequence[str]) -> list[ParkedFact]:
        return self._select_parked(SQL("WHERE waits_for = ANY(%s::text[])"),
                                   (text_array(keys),))

    def list_parked(self, limit: int) -> list[ParkedFact]:
        return self._select_parked(SQL(""), (), limit)

    def expire_parked(self, parked_before: datetime, now: datetime) -> list[ParkedFact]:
        expired = self._select_parked(SQL("WHERE parked_at < %s"), (parked_before,))
        if expired:
            with self.datastore.transaction(commit=True) as curs:
                self._write_parking(curs, ParkingChanges(
                    release=[f.event_id for f in expired],
                    dead=[_timed_out(f, now) for f in expired]), now)
        return expired

    def list_dead_letters(self, *, unpublished_channel: str | None = None,
                          unresolved: bool = False, limit: int = 1000
                          ) -> list[DeadLetterRecord]:
        where, params = [SQL("true")], []
        if unpublished_channel is not None:
            where.append(SQL("NOT published AND channel = %s"))
            params.append(unpublished_channel)
        if unresolved:
            where.append(SQL("NOT resolved"))
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(SQL("SELECT * FROM {} WHERE {} ORDER BY id LIMIT {}").format(
                self._parking_table("dead_letters"), SQL(" AND ").join(where), int(limit)),
                params)
            return [DeadLetterRecord(
                row["id"], _parked_of(row, row["event_id"], row["parked_at"]),
                row["dead_at"], row["published"], row["resolved"])
                for row in curs.fetchall()]

    def mark_dead_letters(self, ids: Sequence[int], *, published: bool = False,
                          resolved: bool = False) -> None:
        column = Identifier("published" if published else "resolved")
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(SQL("UPDATE {} SET {} = true WHERE id = ANY(%s)").format(
                self._parking_table("dead_letters"), column), (list(ids),))


def _timed_out(fact: ParkedFact, now: datetime) -> ParkedFact:
    waited = now - fact.parked_at
    hours = waited.total_seconds() / 3600
    return ParkedFact(
        fact.event_id, fact.fact_text, fact.digest, fact.waits_for, "prerequisite_timeout",
        fact.field,
        f"still waiting after {hours:.1f} h: "
        f"{fact.reason.removesuffix(PrerequisiteMissingError.KEPT)}", fact.channel,
        fact.scope, fact.origin, fact.parked_at, fact.seq)
