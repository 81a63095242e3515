"""The xAPI query tables: a projection of the statement log, rebuilt from zero by replay.

Rows are keyed by the statement's position in the xAPI notification log and written with
INSERT ... ON CONFLICT DO NOTHING, and the position only moves forward, so two processes
projecting the same statements (every API worker projects its own writes before answering)
leave the same rows. Voiding marks the target's row; the target's fact never changes.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from api.xapi.backend import StatementQuery
from infra.settings import Settings
from infra.store.sql_connection import SqlConnection
from projections.xapi_statement_index import (
    activity_definitions,
    index_statement,
    merge_definition,
)

TABLES = ("xapi_statements", "xapi_statement_agents", "xapi_statement_activities",
          "xapi_activities", "xapi_position")
DDL = [
    "CREATE TABLE IF NOT EXISTS xapi_statements (seq BIGINT PRIMARY KEY, "
    "statement_id TEXT NOT NULL UNIQUE, org_id TEXT NOT NULL, stored TEXT NOT NULL, "
    "stored_key TEXT NOT NULL, verb_id TEXT NOT NULL, registration TEXT, voids TEXT, "
    "voided_by TEXT, ref_id TEXT, body TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS xapi_statements_ref ON xapi_statements (ref_id)",
    "CREATE INDEX IF NOT EXISTS xapi_statements_verb ON xapi_statements (verb_id, seq)",
    "CREATE INDEX IF NOT EXISTS xapi_statements_registration ON xapi_statements "
    "(registration, seq)",
    "CREATE INDEX IF NOT EXISTS xapi_statements_voids ON xapi_statements (voids)",
    "CREATE TABLE IF NOT EXISTS xapi_statement_agents (agent_key TEXT NOT NULL, "
    "related INTEGER NOT NULL, seq BIGINT NOT NULL, PRIMARY KEY (agent_key, related, seq))",
    "CREATE TABLE IF NOT EXISTS xapi_statement_activities (activity_id TEXT NOT NULL, "
    "related INTEGER NOT NULL, seq BIGINT NOT NULL, PRIMARY KEY (activity_id, related, seq))",
    # The canonical definition of each activity, merged from every statement that gives one.
    "CREATE TABLE IF NOT EXISTS xapi_activities (org_id TEXT NOT NULL, activity_id TEXT NOT "
    "NULL, definition TEXT NOT NULL, PRIMARY KEY (org_id, activity_id))",
    "CREATE TABLE IF NOT EXISTS xapi_position (id INTEGER PRIMARY KEY, "
    "position BIGINT NOT NULL)",
]


@dataclass(frozen=True)
class ProjectedStatement:
    """One notification of the xAPI log, decoded: what the query tables need."""

    seq: int
    statement: dict[str, Any]
    body: str
    org_id: str


class StatementTables:
    def __init__(self, settings: Settings) -> None:
        self.db = SqlConnection(settings)
        self.lock = threading.Lock()  # one connection, shared by the server's threads
        with self.lock:
            self.db.create_tables(DDL)

    def position(self, row: int = 1) -> int:
        """Row 1: how far the tables are projected; other rows: other readers of the log."""
        with self.lock:
            rows = self.db.query("SELECT position FROM xapi_position WHERE id = ?", (row,))
        return int(rows[0][0]) if rows else 0

    def move_position(self, row: int, position: int) -> None:
        with self.lock, self.db.transaction() as cur:
            cur.execute(self.db.sql(
                "INSERT INTO xapi_position (id, position) VALUES (?, ?) ON CONFLICT (id) DO "
                "UPDATE SET position = excluded.position WHERE xapi_position.position < "
                "excluded.position"), (row, position))

    def last_stored(self) -> str | None:
        """`stored` of the last projected statement."""
        with self.lock:
            rows = self.db.query(
                "SELECT stored FROM xapi_statements ORDER BY seq DESC LIMIT 1")
        return str(rows[0][0]) if rows else None

    def apply(self, page: Sequence[ProjectedStatement]) -> None:
        """Project a page of the log (in log order) and move the position past it, in one
        transaction of a few batched statements (one round trip per row costs too much on
        PostgreSQL)."""
        if not page:
            return
        statements, agents, activities, voids = [], [], [], []
        definitions: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for item in page:
            index = index_statement(item.statement)
            statements.append((item.seq, index.statement_id, item.org_id,
                               item.statement["stored"], index.stored_key, index.verb_id,
                               index.registration, index.voids, index.ref_id, item.body))
            agents += [(key, int(related), item.seq) for key, related in index.agents]
            activities += [(activity_id, int(related), item.seq)
                           for activity_id, related in index.activities]
            if index.voids is not None:
                voids.append((index.statement_id, index.voids, item.seq))
            for activity_id, definition in activity_definitions(item.statement):
                definitions.setdefault((item.org_id, activity_id), []).append(definition)
        sql = self.db.sql
        with self.lock, self.db.transaction() as cur:
            cur.executemany(sql(
                "INSERT INTO xapi_statements (seq, statement_id, org_id, stored, stored_key, "
                "verb_id, registration, voids, voided_by, ref_id, body) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?) ON CONFLICT DO NOTHING"), statements)
            if agents:
                cur.executemany(sql("INSERT INTO xapi_statement_agents VALUES (?, ?, ?) "
                                    "ON CONFLICT DO NOTHING"), agents)
            if activities:
                cur.executemany(sql("INSERT INTO xapi_statement_activities VALUES (?, ?, ?) "
                                    "ON CONFLICT DO NOTHING"), activities)
            if voids:
                # A voiding statement voids a stored statement that is not itself a voiding
                # one; targets unknown or voiding are accepted with no effect.
                cur.executemany(sql(
                    "UPDATE xapi_statements SET voided_by = ? WHERE statement_id = ? "
                    "AND voids IS NULL AND voided_by IS NULL AND seq < ?"), voids)
            if definitions:
                self._merge_definitions(cur, definitions)
            cur.execute(sql("INSERT INTO xapi_position (id, position) VALUES (1, ?) "
                            "ON CONFLICT (id) DO UPDATE SET position = excluded.position "
                            "WHERE xapi_position.position < excluded.position"),
                        (page[-1].seq,))

    def _merge_definitions(self, cur: Any,
                           new: dict[tuple[str, str], list[dict[str, Any]]]) -> None:
        """Merge the page's definitions (in log order) into the stored canonical ones."""
        known: dict[tuple[str, str], dict[str, Any]] = {}
        keys = list(new)
        for start in range(0, len(keys), 200):
            chunk = keys[start:start + 200]
            marks = " OR ".join(["(org_id = ? AND activity_id = ?)"] * len(chunk))
            cur.execute(self.db.sql(f"SELECT org_id, activity_id, definition FROM "
                                    f"xapi_activities WHERE {marks}"),
                        [part for key in chunk for part in key])
            known |= {(str(org), str(activity)): json.loads(text)
                      for org, activity, text in cur.fetchall()}
        rows = []
        for key, definitions in new.items():
            merged = known.get(key)
            for definition in definitions:
                merged = merge_definition(merged, definition)
            rows.append((*key, json.dumps(merged, ensure_ascii=False)))
        cur.executemany(self.db.sql(
            "INSERT INTO xapi_activities VALUES (?, ?, ?) ON CONFLICT (org_id, activity_id) "
            "DO UPDATE SET definition = excluded.definition"), rows)

    def definition(self, orgs: Sequence[str], activity_id: str) -> dict[str, Any] | None:
        """The canonical definition of an activity, from the statements of these orgs."""
        marks = ",".join("?" * len(orgs))
        with self.lock:
            rows = self.db.query(f"SELECT definition FROM xapi_activities WHERE activity_id = ? "
                                 f"AND org_id IN ({marks})", (activity_id, *orgs))
        merged: dict[str, Any] | None = None
        for (text,) in rows:
            merged = merge_definition(merged, json.loads(text))
        return merged

    def reset(self) -> None:
        """Empty the query tables and their position (a replay starts from zero). Other
        readers' positions stay: the bridge's facts are recorded already and would only be
        derived again as duplicates."""
        with self.lock, self.db.transaction() as cur:
            for table in TABLES:
                cur.execute(f"DELETE FROM {table}" if table != "xapi_position"
                            else "DELETE FROM xapi_position WHERE id = 1")

    def statement(self, statement_id: str, orgs: Sequence[str], *, voided: bool
                  ) -> tuple[str, str] | None:
        """(body, stored) of a statement by id: a voided one only when `voided`, any other
        only when not."""
        marks = ",".join("?" * len(orgs))
        condition = "voided_by IS NOT NULL" if voided else "voided_by IS NULL"
        with self.lock:
            rows = self.db.query(
                f"SELECT body, stored FROM xapi_statements WHERE statement_id = ? AND "
                f"{condition} AND org_id IN ({marks})", (statement_id.lower(), *orgs))
        return (str(rows[0][0]), str(rows[0][1])) if rows else None

    def known_ids(self, statement_ids: list[str]) -> set[str]:
        """Which of these (lower-case) statement ids the tables hold, in any org."""
        found: set[str] = set()
        for start in range(0, len(statement_ids), 500):
            chunk = statement_ids[start:start + 500]
            with self.lock:
                rows = self.db.query(f"SELECT statement_id FROM xapi_statements WHERE "
                                     f"statement_id IN ({','.join('?' * len(chunk))})", chunk)
            found |= {str(row[0]) for row in rows}
        return found

    def max_seq(self) -> int:
        with self.lock:
            rows = self.db.query("SELECT MAX(seq) FROM xapi_statements")
        return int(rows[0][0] or 0)

    def find(self, query: StatementQuery) -> list[tuple[int, str]]:
        """(seq, body) of up to `limit + 1` statements matching the filter, in order.

        A statement also matches when the statement its object refers to (a StatementRef,
        e.g. a voiding statement's target) matches agent, verb, activity and registration,
        voided or not; time, scope and the voided rule apply to the statement itself."""
        where = ["s.voided_by IS NULL", f"s.org_id IN ({','.join('?' * len(query.orgs))})"]
        params: list[Any] = list(query.orgs)
        criteria, criteria_params = _criteria(query, "s")
        if criteria:
            target, target_params = _criteria(query, "t")
            where.append(f"(({criteria}) OR EXISTS (SELECT 1 FROM xapi_statements t WHERE "
                         f"t.statement_id = s.ref_id AND t.org_id = s.org_id AND {target}))")
            params += criteria_params + target_params
        for column, value, operator in (
                ("stored_key", query.since, ">"), ("stored_key", query.until, "<="),
                ("seq", query.through_seq, "<=")):
            if value is not None:
                where.append(f"s.{column} {operator} ?")
                params.append(value)
        if query.after_seq is not None:
            where.append("s.seq > ?" if query.ascending else "s.seq < ?")
            params.append(query.after_seq)
        order = "ASC" if query.ascending else "DESC"
        sql = (f"SELECT s.seq, s.body FROM xapi_statements s WHERE {' AND '.join(where)} "
               f"ORDER BY s.seq {order} LIMIT ?")
        params.append(query.limit + 1)
        with self.lock:
            rows = self.db.query(sql, params)
        return [(int(seq), str(body)) for seq, body in rows]

    def close(self) -> None:
        self.db.close()


def _criteria(query: StatementQuery, alias: str) -> tuple[str, list[Any]]:
    """The agent, verb, activity and registration conditions on statement `alias`."""
    where: list[str] = []
    params: list[Any] = []
    if query.agent is not None:
        related = "" if query.related_agents else " AND a.related = 0"
        where.append("EXISTS (SELECT 1 FROM xapi_statement_agents a WHERE "
                     f"a.agent_key = ? AND a.seq = {alias}.seq{related})")
        params.append(query.agent)
    if query.activity is not None:
        related = "" if query.related_activities else " AND c.related = 0"
        where.append("EXISTS (SELECT 1 FROM xapi_statement_activities c WHERE "
                     f"c.activity_id = ? AND c.seq = {alias}.seq{related})")
        params.append(query.activity)
    for column, value in (("verb_id", query.verb), ("registration", query.registration)):
        if value is not None:
            where.append(f"{alias}.{column} = ?")
            params.append(value)
    return " AND ".join(where), params


def decode(seq: int, state: dict[str, Any]) -> ProjectedStatement:
    body = str(state["statement"])
    return ProjectedStatement(seq, json.loads(body), body, str(state["org_id"]))
