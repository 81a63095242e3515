"""The read side the HTTP API is given (api.services.ReadViews), over the view tables.

The server answers from several threads; each thread gets its own database connection
(a connection must not run two statements at once). Page cursors leave sealed
(api.cursors): the views' own cursors name learners, and the API's readers may not see them.
"""

from __future__ import annotations

import re
import secrets
import threading
from datetime import datetime
from typing import Any

from api.cursors import CursorSeal
from domain.application import StudyLedger
from domain.archive import LearnerArchive
from infra.settings import Settings
from infra.view_queries import ViewQueries, compliance, history, org_statistics
from infra.view_store import ViewStore
from projections.audit_trail import TrailPage
from projections.ranking_board import BoardAnswer

ANCESTORS_SQL = (
    "WITH RECURSIVE up(org_id, parent_id, depth) AS (SELECT org_id, parent_id, 0 FROM v_orgs "
    "WHERE org_id = ? UNION ALL SELECT o.org_id, o.parent_id, up.depth + 1 FROM v_orgs o "
    "JOIN up ON o.org_id = up.parent_id WHERE up.depth < 64) SELECT org_id FROM up"
)
CURSOR_SECRET = "cursor_secret"


def cursor_secret(settings: Settings, views: ViewStore) -> bytes:
    """STUDYLEDGER_SECRET_KEY, or else the store's own, generated on first use.

    Kept in the store (not per process) so that every worker and every restart accepts the
    cursors the others handed out; v_meta survives replays and layout upgrades.
    """
    if settings.secret_key:
        return settings.secret_key.encode()
    views.execute("INSERT INTO v_meta VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
                  (CURSOR_SECRET, secrets.token_urlsafe(32)))
    rows = views.query("SELECT value FROM v_meta WHERE key = ?", (CURSOR_SECRET,))
    return str(rows[0][0]).encode()


class ApiReadViews:
    def __init__(self, settings: Settings, ledger: StudyLedger) -> None:
        self.settings = settings
        self.ledger = ledger
        store = ViewStore(settings)  # create or upgrade the tables once, up front
        try:
            self._seal = CursorSeal(cursor_secret(settings, store))
        finally:
            store.close()
        self._local = threading.local()
        # An org's chain of ancestors never changes (no fact moves an org), so it is cached
        # for good once the org is in the views.
        self._ancestors: dict[str, frozenset[str]] = {}

    @property
    def _queries(self) -> ViewQueries:
        queries: ViewQueries | None = getattr(self._local, "queries", None)
        if queries is None:
            queries = ViewQueries(ViewStore(self.settings, create_tables=False))
            self._local.queries = queries
        return queries

    def _query(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        return self._queries.views.query(sql, params)

    def position(self) -> int:
        return self._queries.views.position()

    def runner_state(self) -> tuple[str, int | None, str | None] | None:
        state = self._queries.views.runner_state()
        return None if state is None else (state.status, state.position, state.error)

    def learner_org(self, learner_id: str) -> str | None:
        rows = self._query("SELECT org_id FROM v_learners WHERE learner_id = ?", (learner_id,))
        if rows:
            return str(rows[0][0])
        # Recorded but not projected yet: the archive itself knows its org.
        archive = self.ledger.get_existing(LearnerArchive, LearnerArchive.id_for(learner_id))
        return None if archive is None else str(archive.org_id)

    def org_table(self) -> list[tuple[str, str, str | None, bool | None]]:
        """(org_id, name, parent_id, board_published) of every org: a small table."""
        return [(r[0], r[1], r[2], None if r[3] is None else bool(r[3])) for r in self._query(
            "SELECT org_id, name, parent_id, board_published FROM v_orgs ORDER BY org_id", ())]

    def org_exists(self, org_id: str) -> bool:
        return bool(self._query("SELECT 1 FROM v_orgs WHERE org_id = ?", (org_id,)))

    def in_subtree(self, org_id: str, ancestor: str) -> bool:
        chain = self._ancestors.get(org_id)
        if chain is None:
            chain = frozenset(row[0] for row in self._query(ANCESTORS_SQL, (org_id,)))
            if chain:
                self._ancestors[org_id] = chain
        return ancestor in chain

    def learner_balance(self, learner_id: str, policy: str, period: str
                        ) -> tuple[str | None, str | None]:
        """(the learner's org, the stored balance answer) in one round trip."""
        rows = self._query(
            "SELECT l.org_id, b.body FROM v_learners l LEFT JOIN v_balances b ON "
            "b.learner_id = l.learner_id AND b.policy = ? AND b.period = ? "
            "WHERE l.learner_id = ?", (policy, period, learner_id))
        if rows:
            return str(rows[0][0]), None if rows[0][1] is None else str(rows[0][1])
        return self.learner_org(learner_id), None

    def board(self, policy: str, period: str, *, org: str | None, limit: int,
              cursor: str | None, anonymous: bool) -> BoardAnswer:
        # Bound to the board: a cursor of another board or cycle is refused, not misread.
        scope = ("board", policy, period, org or "")
        answer = self._queries.board(
            policy, period, org=org, limit=limit, anonymous=anonymous,
            cursor=self._seal.open(scope, cursor) if cursor else None)
        if answer.next_cursor is None:
            return answer
        return answer.model_copy(update={
            "next_cursor": self._seal.seal(scope, answer.next_cursor)})

    def board_is_public(self, org: str) -> bool:
        return self._queries.board_is_public(org)

    def rank(self, policy: str, period: str, learner_id: str,
             org: str | None) -> dict[str, Any]:
        return self._queries.rank(policy, period, learner_id, org)

    def compliance(self, org: str, policy: str, period: str) -> dict[str, Any]:
        return compliance(self._queries.views, self.ledger, org, policy, period)

    def org_statistics(self, org: str, policy: str, year: int) -> dict[str, Any]:
        return org_statistics(self._queries.views, org, policy, year)

    def find_learners(self, org: str, text: str, limit: int) -> list[tuple[str, str, str]]:
        # LIKE's wildcards in a name someone types are plain characters.
        pattern = "%" + re.sub(r"([!%_])", r"!\1", text) + "%"
        rows = self._query(
            "WITH RECURSIVE subtree(org_id) AS (SELECT org_id FROM v_orgs WHERE org_id = ? "
            "UNION ALL SELECT o.org_id FROM v_orgs o JOIN subtree s ON o.parent_id = s.org_id) "
            "SELECT l.learner_id, l.name, l.org_id FROM v_learners l "
            "JOIN subtree s ON l.org_id = s.org_id "
            "WHERE UPPER(l.learner_id) = UPPER(?) OR l.name LIKE ? ESCAPE '!' "
            "ORDER BY l.learner_id LIMIT ?", (org, text, pattern, limit))
        return [(str(r[0]), str(r[1]), str(r[2])) for r in rows]

    def stored_periods(self, policy: str) -> list[str]:
        return [str(r[0]) for r in self._query(
            "SELECT DISTINCT period FROM v_balances WHERE policy = ?", (policy,))]

    def history(self, learner_id: str, *, known_at: datetime | None,
                happened_by: datetime | None, limit: int, cursor: str | None) -> TrailPage:
        scope = ("history", learner_id)
        page = history(self.ledger, learner_id, known_at=known_at, happened_by=happened_by,
                       limit=limit,
                       cursor=self._seal.open(scope, cursor) if cursor else None)
        if page.next_cursor is None:
            return page
        return page.model_copy(update={"next_cursor": self._seal.seal(scope, page.next_cursor)})
