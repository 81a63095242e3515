"""The one read side (projections.ports.ReadViews) over the view tables: the HTTP API and
the CLI read through it alike.

The server answers from several threads; each thread gets its own database connection
(a connection must not run two statements at once). For the API, page cursors leave sealed
(api.cursors): the views' own cursors name learners, and the API's readers may not see them.
The CLI is run by the operator of the store and shows the views' own cursors.
"""

from __future__ import annotations

import re
import secrets
import threading
from datetime import datetime
from typing import Any

from api.cursors import CursorSeal
from domain.application import StudyLedger
from domain.archive import LearnerArchive, OrgUnit
from domain.credits.balance import BalanceAnswer
from domain.credits.lines import RecordedFact
from domain.errors import InvalidCursorError, LearnerNotRegisteredError
from domain.org_tree import walk_up
from domain.policy.pack import SHIPPED_PACKS, load_pack
from infra.settings import Settings
from infra.views.boards import MAX_PAGE, BoardQueries
from infra.views.reports import (
    ANCESTORS_SQL,
    SUBTREE_CTE,
    compliance,
    org_statistics,
    subtree_learners,
)
from infra.views.writer import ViewStore
from projections.answers import ComplianceAnswer, OrgStatistics, RankAnswer
from projections.audit_trail import Asked, TrailFact, TrailPage, audit_trail, empty_trail_note
from projections.ranking_board import BoardAnswer

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


class SqlReadViews:
    def __init__(self, settings: Settings, ledger: StudyLedger, *,
                 sealed_cursors: bool = True) -> None:
        self.settings = settings
        self.ledger = ledger
        store = ViewStore(settings)  # create or upgrade the tables once, up front
        try:
            self._seal = (CursorSeal(cursor_secret(settings, store)) if sealed_cursors
                          else None)
        finally:
            store.close()
        self._local = threading.local()
        self._connections: list[ViewStore] = []  # every thread's, closed by close()
        self._connections_lock = threading.Lock()
        # An org's chain of ancestors never changes (no fact moves an org), so it is cached
        # for good once the org is in the views.
        self._ancestors: dict[str, frozenset[str]] = {}

    @property
    def _queries(self) -> BoardQueries:
        queries: BoardQueries | None = getattr(self._local, "queries", None)
        if queries is None:
            store = ViewStore(self.settings, create_tables=False)
            with self._connections_lock:
                self._connections.append(store)
            queries = BoardQueries(store)
            self._local.queries = queries
        return queries

    def close(self) -> None:
        """Close every thread's connection (the server's thread pool opened one each)."""
        with self._connections_lock:
            connections, self._connections = self._connections, []
        for store in connections:
            store.close()
        self._local = threading.local()

    @property
    def views(self) -> ViewStore:
        """This thread's connection to the view tables."""
        return self._queries.views

    def _query(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        return self.views.query(sql, params)

    def _sealed(self, scope: tuple[str, ...], cursor: str | None) -> str | None:
        return cursor if cursor is None or self._seal is None else self._seal.seal(scope, cursor)

    def _opened(self, scope: tuple[str, ...], cursor: str | None) -> str | None:
        return cursor if not cursor or self._seal is None else self._seal.open(scope, cursor)

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
        if self._query("SELECT 1 FROM v_orgs WHERE org_id = ?", (org_id,)):
            return True
        return self._recorded_org(org_id) is not None  # recorded, not projected yet

    def in_subtree(self, org_id: str, ancestor: str) -> bool:
        chain = self._ancestors.get(org_id)
        if chain is None:
            chain = frozenset(row[0] for row in self._query(ANCESTORS_SQL, (org_id,)))
            if not chain:
                # Recorded but not projected yet: the archive's org tree answers, as
                # learner_org does for a learner, so a read never depends on projection lag.
                return any(org == ancestor for org in walk_up(org_id, self._recorded_parent))
            # A parent is recorded before its children and projected in log order, so the
            # chain of an org in the views is whole.
            self._ancestors[org_id] = chain
        return ancestor in chain

    def _recorded_org(self, org_id: str) -> OrgUnit | None:
        return self.ledger.get_existing(OrgUnit, OrgUnit.id_for(org_id))

    def _recorded_parent(self, org_id: str) -> str | None:
        unit = self._recorded_org(org_id)
        parent: str | None = None if unit is None else unit.parent_id
        return parent

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
        answer = self._queries.board(policy, period, org=org, limit=limit, anonymous=anonymous,
                                     cursor=self._opened(scope, cursor))
        if answer.next_cursor is None:
            return answer
        return answer.model_copy(update={"next_cursor": self._sealed(scope, answer.next_cursor)})

    def board_is_public(self, org: str) -> bool:
        return self._queries.board_is_public(org)

    def rank(self, policy: str, period: str, learner_id: str,
             org: str | None) -> RankAnswer:
        return self._queries.rank(policy, period, learner_id, org)

    def compliance(self, org: str, policy: str, period: str) -> ComplianceAnswer:
        return compliance(self.views, self.ledger, org, policy, period)

    def org_statistics(self, org: str, policy: str, year: int) -> OrgStatistics:
        return org_statistics(self.views, org, policy, year)

    def stored_balance(self, learner_id: str, policy: str, period: str) -> BalanceAnswer | None:
        return self._queries.stored_balance(learner_id, policy, period)

    def subtree_learners(self, org: str) -> list[tuple[Any, ...]]:
        """(learner_id, name, org_id, rank, registered_year) of every learner under `org`."""
        return subtree_learners(self.views, org)

    def find_learners(self, org: str, text: str, limit: int) -> list[tuple[str, str, str]]:
        # LIKE's wildcards in a name someone types are plain characters.
        pattern = "%" + re.sub(r"([!%_])", r"!\1", text) + "%"
        rows = self._query(
            SUBTREE_CTE + "SELECT l.learner_id, l.name, l.org_id FROM v_learners l "
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
                       limit=limit, cursor=self._opened(scope, cursor))
        if page.next_cursor is None:
            return page
        return page.model_copy(update={"next_cursor": self._sealed(scope, page.next_cursor)})


def history(ledger: StudyLedger, learner_id: str, *, known_at: datetime | None = None,
            happened_by: datetime | None = None, limit: int = 100,
            cursor: str | None = None) -> TrailPage:
    """A page of the learner's audit trail as known at `known_at` (recording time) and as
    happened by `happened_by` (occurred_at); the cursor is the last version shown."""
    after = 0
    if cursor:
        # ASCII digits only (str.isdigit also takes "²"), and few enough for a version:
        # int() refuses over 4,300 digits.
        if not (cursor.isascii() and cursor.isdigit() and len(cursor) <= 18):
            raise InvalidCursorError(f"cursor {cursor[:80]!r} is not a history cursor")
        after = int(cursor)
    events: list[Any] = list(ledger.events.get(LearnerArchive.id_for(learner_id)))
    if not events:
        raise LearnerNotRegisteredError(f"learner {learner_id} is not registered")
    trail = [TrailFact(e.originator_version, RecordedFact(e.event_id, e.fact, e.timestamp),
                       e.hash, e.prev_hash) for e in events]
    asked = Asked(known_at=known_at, happened_by=happened_by)
    entries = audit_trail(trail, [load_pack(p) for p in SHIPPED_PACKS], known_at, happened_by)
    page = [e for e in entries if e.version > after][: max(1, min(limit, MAX_PAGE))]
    more = bool(page) and page[-1].version < entries[-1].version
    return TrailPage(learner_id=learner_id, as_of=known_at, asked=asked, entries=page,
                     next_cursor=str(page[-1].version) if more else None,
                     note=None if entries else empty_trail_note(trail, asked))
