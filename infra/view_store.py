"""The read tables, in the same database as the event store (SQLite file or PostgreSQL schema).

Every batch of view changes is written in one transaction together with the projection's
position in the notification log, so a crash leaves views and position in step: the batch is
either wholly applied or wholly redone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from infra.settings import Settings
from infra.sql_connection import SqlConnection
from projections.learner_views import BalanceRow, LearnerRow, OrgRow

# Bump when a view's layout changes: the views are then dropped and rebuilt from the log.
VIEWS_VERSION = "2"
TABLES = ("v_balances", "v_learners", "v_orgs", "v_tracking")
DDL = [
    "CREATE TABLE IF NOT EXISTS v_learners (learner_id TEXT PRIMARY KEY, name TEXT NOT NULL, "
    "org_id TEXT NOT NULL, rank TEXT NOT NULL, registered_year INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS v_learners_org ON v_learners (org_id)",
    "CREATE TABLE IF NOT EXISTS v_orgs (org_id TEXT PRIMARY KEY, name TEXT NOT NULL, "
    "parent_id TEXT, board_published BOOLEAN)",
    "CREATE INDEX IF NOT EXISTS v_orgs_parent ON v_orgs (parent_id)",
    "CREATE TABLE IF NOT EXISTS v_balances (learner_id TEXT NOT NULL, policy TEXT NOT NULL, "
    "period TEXT NOT NULL, is_cycle BOOLEAN NOT NULL, status TEXT NOT NULL, "
    "score_cents BIGINT NOT NULL, required_hours_cents BIGINT NOT NULL, body TEXT NOT NULL, "
    "PRIMARY KEY (learner_id, policy, period))",
    "CREATE INDEX IF NOT EXISTS v_balances_board ON v_balances "
    "(policy, period, score_cents DESC, learner_id)",
    "CREATE TABLE IF NOT EXISTS v_tracking (projection TEXT PRIMARY KEY, position BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS v_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
]
PROJECTION = "views"


@dataclass
class ViewBatch:
    """Everything one batch changes, and the notification position it brings the views to."""

    position: int
    learners: list[LearnerRow]
    balances: list[BalanceRow]
    orgs: list[OrgRow]


class ViewStore(SqlConnection):
    """Plain SQL over the read tables."""

    def __init__(self, settings: Settings, *, create_tables: bool = True) -> None:
        super().__init__(settings)
        if create_tables:  # readers opened after the runner's store skip the DDL
            with self.transaction() as cur:
                self._create_tables(cur)

    def _create_tables(self, cur: Any) -> None:
        cur.execute(DDL[-1])  # v_meta first: it says whether the rest are current
        cur.execute(self.sql("SELECT value FROM v_meta WHERE key = ?"), ("views_version",))
        found = cur.fetchone()
        if found is None or found[0] != VIEWS_VERSION:
            for table in TABLES:
                cur.execute(f"DROP TABLE IF EXISTS {table}")
        for statement in DDL:
            cur.execute(statement)
        cur.execute(self.sql("INSERT INTO v_meta VALUES (?, ?) ON CONFLICT (key) DO UPDATE "
                             "SET value = excluded.value"), ("views_version", VIEWS_VERSION))

    # -- writing ---------------------------------------------------------------------

    def position(self) -> int:
        rows = self.query("SELECT position FROM v_tracking WHERE projection = ?", (PROJECTION,))
        return int(rows[0][0]) if rows else 0

    def write(self, batch: ViewBatch) -> None:
        """Apply one batch and move the position, atomically."""
        learner_ids = [(row.learner_id,) for row in batch.learners]
        with self.transaction() as cur:
            cur.executemany(self.sql("DELETE FROM v_balances WHERE learner_id = ?"), learner_ids)
            cur.executemany(self.sql(
                "INSERT INTO v_balances VALUES (?, ?, ?, ?, ?, ?, ?, ?)"),
                [(b.learner_id, b.policy, b.period, b.is_cycle, b.status, b.score_cents,
                  b.required_hours_cents, b.body) for b in batch.balances])
            cur.executemany(self.sql(
                "INSERT INTO v_learners VALUES (?, ?, ?, ?, ?) ON CONFLICT (learner_id) DO "
                "UPDATE SET name = excluded.name, org_id = excluded.org_id, rank = excluded.rank, "
                "registered_year = excluded.registered_year"),
                [(r.learner_id, r.name, r.org_id, r.rank, r.registered_year)
                 for r in batch.learners])
            cur.executemany(self.sql(
                "INSERT INTO v_orgs VALUES (?, ?, ?, ?) ON CONFLICT (org_id) DO UPDATE SET "
                "name = excluded.name, parent_id = excluded.parent_id, "
                "board_published = excluded.board_published"),
                [(o.org_id, o.name, o.parent_id, o.board_published) for o in batch.orgs])
            cur.execute(self.sql(
                "INSERT INTO v_tracking VALUES (?, ?) ON CONFLICT (projection) DO UPDATE "
                "SET position = excluded.position"), (PROJECTION, batch.position))

    def reset(self) -> None:
        """Empty every view and the position (a replay starts from zero)."""
        with self.transaction() as cur:
            for table in TABLES:
                cur.execute(f"DELETE FROM {table}")

    def dump(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every view, ordered: for comparing a live run with a rebuild."""
        return {
            "v_learners": self.query("SELECT * FROM v_learners ORDER BY learner_id"),
            "v_orgs": self.query("SELECT * FROM v_orgs ORDER BY org_id"),
            "v_balances": self.query(
                "SELECT * FROM v_balances ORDER BY learner_id, policy, period"),
        }
