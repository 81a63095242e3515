"""The projection runner's writer (projections.ports.ViewWriter) over the read tables, in the
same database as the event store (SQLite file or PostgreSQL schema).

Every batch of view changes is written in one transaction together with the projection's
position in the notification log, so a crash leaves views and position in step: the batch is
either wholly applied or wholly redone.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict
from typing import Any

from infra.settings import Settings
from infra.store.sql_connection import SqlConnection
from infra.views.schema import DDL, PROJECTION, RUNNER_STATE, TABLES, VIEWS_VERSION
from projections.learner_views import LearnerRow, OrgRow
from projections.ports import ALL_ORGS, RunnerState, ViewBatch, ViewsMovedError

__all__ = ["ALL_ORGS", "RunnerState", "ViewBatch", "ViewStore", "ViewsMovedError"]



class ViewStore(SqlConnection):
    """Plain SQL over the read tables."""

    def __init__(self, settings: Settings, *, create_tables: bool = True) -> None:
        super().__init__(settings)
        if create_tables:  # readers opened after the runner's store skip the DDL
            with self.ddl_transaction() as cur:
                self._create_tables(cur)

    def _create_tables(self, cur: Any) -> None:
        cur.execute(DDL[-1])  # v_meta first: it says whether the rest are current
        cur.execute(self.sql("SELECT value FROM v_meta WHERE key = ?"), ("views_version",))
        found = cur.fetchone()
        if found is None or found[0] != VIEWS_VERSION:
            for table in TABLES:
                cur.execute(f"DROP TABLE IF EXISTS {table}")
        self.run_ddl(cur, DDL)
        cur.execute(self.sql("INSERT INTO v_meta VALUES (?, ?) ON CONFLICT (key) DO UPDATE "
                             "SET value = excluded.value"), ("views_version", VIEWS_VERSION))
        self._track_from_zero(cur)

    def _track_from_zero(self, cur: Any) -> None:
        """A position row from the start, so that a batch can always lock it (see write)."""
        cur.execute(self.sql("INSERT INTO v_tracking VALUES (?, 0) ON CONFLICT (projection) "
                             "DO NOTHING"), (PROJECTION,))

    # -- writing ---------------------------------------------------------------------

    def org_parents(self) -> dict[str, str | None]:
        return {row[0]: row[1] for row in self.query("SELECT org_id, parent_id FROM v_orgs")}

    def stored_org(self, org_id: str) -> OrgRow | None:
        rows = self.query(
            "SELECT org_id, name, parent_id, board_published FROM v_orgs WHERE org_id = ?",
            (org_id,))
        if not rows:
            return None
        published = rows[0][3]
        return OrgRow(rows[0][0], rows[0][1], rows[0][2],
                      None if published is None else bool(published))

    def position(self) -> int:
        rows = self.query("SELECT position FROM v_tracking WHERE projection = ?", (PROJECTION,))
        return int(rows[0][0]) if rows else 0

    def write(self, batch: ViewBatch) -> None:
        """Apply one batch and move the position, atomically."""
        learner_ids = [row.learner_id for row in batch.learners]
        with self.transaction() as cur:
            if batch.after is not None:
                self._check_position(cur, batch.after)
            previous_orgs = self._current_orgs(cur, learner_ids)
            for table in ("v_balances", "v_members", "v_board", "v_learners"):
                self._delete_learners(cur, table, learner_ids)
            self._insert(cur, "v_balances", [
                (b.learner_id, b.policy, b.period, b.is_cycle, b.status, b.score_cents,
                 b.required_hours_cents, b.body) for b in batch.balances])
            self._insert(cur, "v_learners", [
                (r.learner_id, r.name, r.org_id, r.rank, r.registered_year)
                for r in batch.learners])
            cur.executemany(self.sql(
                "INSERT INTO v_orgs VALUES (?, ?, ?, ?) ON CONFLICT (org_id) DO UPDATE SET "
                "name = excluded.name, parent_id = excluded.parent_id, "
                "board_published = excluded.board_published"),
                [(o.org_id, o.name, o.parent_id, o.board_published) for o in batch.orgs])
            # Before the boards: a recount of the boards of learners written whole must
            # see the kept learners' board rows as they now are.
            self._write_changed_balances(cur, batch)
            self._write_boards(cur, batch, previous_orgs)
            cur.execute(self.sql(
                "INSERT INTO v_tracking VALUES (?, ?) ON CONFLICT (projection) DO UPDATE "
                "SET position = excluded.position"), (PROJECTION, batch.position))

    def _check_position(self, cur: Any, after: int) -> None:
        """The fence behind the runner's lease: a batch is written only over the views it
        was read from. The position row stays locked to the commit (SQLite's BEGIN
        IMMEDIATE locks the whole file), so of two runners one waits and then refuses."""
        lock = "" if self.is_sqlite else " FOR UPDATE"
        cur.execute(self.sql(f"SELECT position FROM v_tracking WHERE projection = ?{lock}"),
                    (PROJECTION,))
        row = cur.fetchone()
        current = int(row[0]) if row else 0
        if current != after:
            raise ViewsMovedError(f"views at position {current}, not {after} as when read")

    def _delete_learners(self, cur: Any, table: str, learner_ids: list[str]) -> None:
        if self.is_sqlite:
            cur.executemany(f"DELETE FROM {table} WHERE learner_id = ?",
                            [(i,) for i in learner_ids])
        else:  # one statement, not one per learner
            cur.execute(f"DELETE FROM {table} WHERE learner_id = ANY(%s)", (learner_ids,))

    def _insert(self, cur: Any, table: str, rows: list[tuple[Any, ...]]) -> None:
        """Plain inserts of whole rows: COPY on PostgreSQL (measured: executemany was a
        quarter of a replay there), executemany on SQLite."""
        if not rows:
            return
        if self.is_sqlite:
            cur.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * len(rows[0]))})",
                            rows)
            return
        with cur.copy(f"COPY {table} FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def _write_changed_balances(self, cur: Any, batch: ViewBatch) -> None:
        """The kept learners' balance rows that changed, and the board rows of those whose
        cycle score moved; their directory and member rows stand as they are."""
        stale = [(b.learner_id, b.policy, b.period) for b in batch.changed_balances]
        if not stale:
            return
        self._delete_balances(cur, "v_balances", stale)
        self._insert(cur, "v_balances", [
            (b.learner_id, b.policy, b.period, b.is_cycle, b.status, b.score_cents,
             b.required_hours_cents, b.body) for b in batch.changed_balances])
        # A board holds a learner's non-zero cycle score: only a score that moved changes it.
        before = batch.scores_before
        moved = [b for b in batch.changed_balances if b.is_cycle
                 and before.get((b.learner_id, b.policy, b.period), 0) != b.score_cents]
        self._delete_balances(cur, "v_board", [(b.learner_id, b.policy, b.period)
                                               for b in moved])
        learners = {row.learner_id: row for row in batch.kept_learners}
        self._insert(cur, "v_board", [
            (b.policy, b.period, org, b.score_cents, b.learner_id,
             learners[b.learner_id].name, learners[b.learner_id].org_id)
            for b in moved if b.score_cents != 0
            for org in batch.chains[learners[b.learner_id].org_id]])
        if batch.board_counts == "touched":
            self._move_board_counts(cur, batch, learners)

    def _move_board_counts(self, cur: Any, batch: ViewBatch,
                           learners: dict[str, LearnerRow]) -> None:
        """Each kept learner whose cycle score changed leaves its old score's count and
        joins its new one's on every board it is on: the work is the batch's, not the
        boards' (a recount reads a whole board). Zero scores are not counted (a board's
        members without a row are its zeros)."""
        moves: Counter[tuple[str, str, str, int]] = Counter()
        new_scores = {(b.learner_id, b.policy, b.period): b.score_cents
                      for b in batch.changed_balances if b.is_cycle}
        for key, after in new_scores.items():
            learner_id, policy, period = key
            before = batch.scores_before.get(key, 0)
            if before == after:
                continue
            for org in batch.chains[learners[learner_id].org_id]:
                if before:
                    moves[(policy, period, org, before)] -= 1
                if after:
                    moves[(policy, period, org, after)] += 1
        changes = [(*key, n) for key, n in moves.items() if n]
        emptied = [change[:4] for change in changes if change[4] < 0]
        on_conflict = (" ON CONFLICT (policy, period, org_id, score_cents) DO UPDATE "
                       "SET n = v_board_counts.n + excluded.n")
        if self.is_sqlite:
            cur.executemany("INSERT INTO v_board_counts VALUES (?, ?, ?, ?, ?)" + on_conflict,
                            changes)
            cur.executemany("DELETE FROM v_board_counts WHERE policy = ? AND period = ? AND "
                            "org_id = ? AND score_cents = ? AND n = 0", emptied)
            return
        # One statement each on PostgreSQL, not one per change.
        if changes:
            cur.execute("INSERT INTO v_board_counts SELECT * FROM unnest(%s::text[], "
                        "%s::text[], %s::text[], %s::bigint[], %s::bigint[])" + on_conflict,
                        [list(column) for column in zip(*changes, strict=True)])
        if emptied:
            cur.execute("DELETE FROM v_board_counts AS c USING unnest(%s::text[], %s::text[], "
                        "%s::text[], %s::bigint[]) AS k(policy, period, org_id, score_cents) "
                        "WHERE (c.policy, c.period, c.org_id, c.score_cents) = "
                        "(k.policy, k.period, k.org_id, k.score_cents) AND c.n = 0",
                        [list(column) for column in zip(*emptied, strict=True)],
                        prepare=False)  # a join on arrays: see _delete_balances

    def _delete_balances(self, cur: Any, table: str, keys: list[tuple[str, str, str]]) -> None:
        """Delete a table's rows of these (learner_id, policy, period)."""
        if not keys:
            return
        if self.is_sqlite:
            cur.executemany(f"DELETE FROM {table} WHERE learner_id = ? AND policy = ? "
                            "AND period = ?", keys)
            return
        learner_ids, policies, periods = (list(column) for column in zip(*keys, strict=True))
        # A join on arrays is never prepared: psycopg prepares a statement on its fifth run,
        # and PostgreSQL may then keep a generic plan made while the table was small and
        # blind to the arrays' length. On v_board such a plan took 45-70 ms a batch, where
        # the plan made for the arrays at hand (an index scan per key) takes 2 ms.
        cur.execute(f"DELETE FROM {table} AS t USING unnest(%s::text[], %s::text[], "
                    "%s::text[]) AS k(learner_id, policy, period) WHERE t.learner_id = "
                    "k.learner_id AND t.policy = k.policy AND t.period = k.period",
                    (learner_ids, policies, periods), prepare=False)

    def _current_orgs(self, cur: Any, learner_ids: list[str]) -> set[str]:
        """The orgs these learners belong to before this batch (a transfer leaves one)."""
        found: set[str] = set()
        for start in range(0, len(learner_ids), 500):
            chunk = learner_ids[start:start + 500]
            cur.execute(self.sql("SELECT DISTINCT org_id FROM v_learners WHERE learner_id IN ("
                                 + ", ".join("?" * len(chunk)) + ")"), chunk)
            found.update(row[0] for row in cur.fetchall())
        return found

    def _write_boards(self, cur: Any, batch: ViewBatch, previous_orgs: set[str]) -> None:
        learners = {row.learner_id: row for row in batch.learners}
        self._insert(cur, "v_members", [
            (org, row.learner_id, row.name, row.org_id)
            for row in batch.learners for org in batch.chains[row.org_id]])
        scored = [b for b in batch.balances if b.is_cycle and b.score_cents != 0]
        self._insert(cur, "v_board", [
            (b.policy, b.period, org, b.score_cents, b.learner_id,
             learners[b.learner_id].name, learners[b.learner_id].org_id)
            for b in scored for org in batch.chains[learners[b.learner_id].org_id]])
        if batch.board_counts == "all":
            self._recount_every_board(cur)
        elif batch.board_counts == "touched":
            self._recount_touched_boards(cur, batch, previous_orgs)

    def _recount_every_board(self, cur: Any) -> None:
        for table in ("v_member_counts", "v_board_counts"):
            cur.execute(f"DELETE FROM {table}")
        cur.execute("INSERT INTO v_member_counts SELECT org_id, COUNT(*) FROM v_members "
                    "GROUP BY org_id")
        cur.execute("INSERT INTO v_board_counts SELECT policy, period, org_id, score_cents, "
                    "COUNT(*) FROM v_board GROUP BY policy, period, org_id, score_cents")

    def _recount_touched_boards(self, cur: Any, batch: ViewBatch, previous_orgs: set[str]
                                ) -> None:
        # Recount every board and org the batch may have changed: the members' orgs now and
        # before, with their ancestors, for every cycle the batch touched.
        orgs = {org for row in batch.learners for org in batch.chains[row.org_id]}
        orgs |= {org for old in previous_orgs for org in batch.chains.get(old, [old])}
        cycles = {(b.policy, b.period) for b in batch.balances if b.is_cycle}
        cycles |= set(self._cycles_on_boards(cur, orgs))
        for org in orgs:
            cur.execute(self.sql("DELETE FROM v_member_counts WHERE org_id = ?"), (org,))
            cur.execute(self.sql("INSERT INTO v_member_counts SELECT org_id, COUNT(*) FROM "
                                 "v_members WHERE org_id = ? GROUP BY org_id"), (org,))
            for policy, period in cycles:
                key = (policy, period, org)
                cur.execute(self.sql("DELETE FROM v_board_counts WHERE policy = ? AND "
                                     "period = ? AND org_id = ?"), key)
                cur.execute(self.sql(
                    "INSERT INTO v_board_counts SELECT policy, period, org_id, score_cents, "
                    "COUNT(*) FROM v_board WHERE policy = ? AND period = ? AND org_id = ? "
                    "GROUP BY policy, period, org_id, score_cents"), key)

    def _cycles_on_boards(self, cur: Any, orgs: set[str]) -> list[tuple[str, str]]:
        """Boards that already exist for these orgs: a learner leaving one must be uncounted."""
        if not orgs:
            return []
        listed = sorted(orgs)
        cur.execute(self.sql("SELECT DISTINCT policy, period FROM v_board_counts WHERE org_id "
                             "IN (" + ", ".join("?" * len(listed)) + ")"), listed)
        return [(row[0], row[1]) for row in cur.fetchall()]

    def record_runner_state(self, state: RunnerState) -> None:
        """Kept in v_meta, so that every serving process (and worker) can report it."""
        self.execute("INSERT INTO v_meta VALUES (?, ?) ON CONFLICT (key) DO UPDATE "
                     "SET value = excluded.value", (RUNNER_STATE, json.dumps(asdict(state))))

    def runner_state(self) -> RunnerState | None:
        rows = self.query("SELECT value FROM v_meta WHERE key = ?", (RUNNER_STATE,))
        return RunnerState(**json.loads(rows[0][0])) if rows else None

    def analyze(self) -> None:
        """Fresh planner statistics, after a rebuild changed every table's size."""
        for table in TABLES:
            self.execute(f"ANALYZE {table}")

    def reset(self) -> None:
        """Empty every view and the position (a replay starts from zero)."""
        with self.transaction() as cur:
            for table in TABLES:
                cur.execute(f"DELETE FROM {table}")
            self._track_from_zero(cur)

    def dump(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every view, ordered: for comparing a live run with a rebuild."""
        return {
            "v_learners": self.query("SELECT * FROM v_learners ORDER BY learner_id"),
            "v_orgs": self.query("SELECT * FROM v_orgs ORDER BY org_id"),
            "v_balances": self.query(
                "SELECT * FROM v_balances ORDER BY learner_id, policy, period"),
            "v_members": self.query("SELECT * FROM v_members ORDER BY org_id, learner_id"),
            "v_board": self.query(
                "SELECT * FROM v_board ORDER BY policy, period, org_id, learner_id"),
            "v_board_counts": self.query(
                "SELECT * FROM v_board_counts ORDER BY policy, period, org_id, score_cents"),
            "v_member_counts": self.query("SELECT * FROM v_member_counts ORDER BY org_id"),
        }

