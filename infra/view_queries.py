"""Reads over the read tables: ranking boards, a learner's rank, stored balances.

An org's board holds every learner registered in its subtree; a learner with no credits in
the period scores 0. Pages are keyset-paginated on (score desc, learner_id).
"""

from __future__ import annotations

import json
import statistics
from datetime import datetime
from typing import Any

from domain.application import StudyLedger
from domain.archive import LearnerArchive
from domain.credits.balance import BalanceAnswer, PolicyRef, parse_period
from domain.credits.lines import RecordedFact
from domain.errors import (
    InvalidCursorError,
    LearnerNotRegisteredError,
    OrgNotRegisteredError,
    PolicyError,
)
from domain.policy.pack import SHIPPED_PACKS, load_pack
from infra.view_store import ViewStore
from projections.audit_trail import TrailFact, TrailPage, audit_trail
from projections.ranking_board import (
    BoardAnswer,
    ScoredLearner,
    board_entries,
    decode_cursor,
    encode_cursor,
)

MAX_PAGE = 500


class ViewQueries:
    def __init__(self, views: ViewStore) -> None:
        self.views = views

    def _scored(self, org: str | None) -> tuple[str, list[Any]]:
        """SQL for the (learner, score) rows of a board: CTE text and its parameters."""
        if org is None:
            members = "SELECT learner_id, name, org_id FROM v_learners"
            params: list[Any] = []
        else:
            members = (
                "SELECT l.learner_id, l.name, l.org_id FROM v_learners l "
                "JOIN subtree s ON l.org_id = s.org_id"
            )
            params = [org]
        sql = (
            "WITH RECURSIVE subtree(org_id) AS (SELECT org_id FROM v_orgs WHERE org_id = ? "
            "UNION ALL SELECT o.org_id FROM v_orgs o JOIN subtree s ON o.parent_id = s.org_id), "
            if org is not None else "WITH "
        ) + (
            f"members AS ({members}), scored AS (SELECT m.learner_id, m.name, m.org_id, "
            "COALESCE(b.score_cents, 0) AS score FROM members m LEFT JOIN v_balances b "
            "ON b.learner_id = m.learner_id AND b.policy = ? AND b.period = ?) "
        )
        return sql, params

    def _check(self, policy: str, period: str, org: str | None) -> str:
        pack = load_pack(policy)
        parsed = parse_period(pack, period)
        if not parsed.is_cycle:
            raise PolicyError(f"boards rank whole cycles; {period!r} is a year", field="period")
        if org is not None and not self.views.query(
                "SELECT 1 FROM v_orgs WHERE org_id = ?", (org,)):
            raise OrgNotRegisteredError(f"org {org} is not registered", field="org")
        return pack.version

    def board(self, policy: str, period: str, *, org: str | None = None, limit: int = 50,
              cursor: str | None = None, anonymous: bool = False) -> BoardAnswer:
        version = self._check(policy, period, org)
        limit = max(1, min(limit, MAX_PAGE))
        head, params = self._scored(org)
        params += [policy, period]
        after = decode_cursor(cursor) if cursor else None
        where, where_params = "", []
        if after is not None:
            where = "WHERE score < ? OR (score = ? AND learner_id > ?) "
            where_params = [after[0], after[0], after[1]]
        rows = self.views.query(
            head + "SELECT learner_id, name, org_id, score FROM scored " + where
            + "ORDER BY score DESC, learner_id LIMIT ?", [*params, *where_params, limit + 1])
        page = [ScoredLearner(r[0], r[1], r[2], int(r[3])) for r in rows[:limit]]
        entries = []
        if page:
            first_rank = 1 + self._count(head, params, "score > ?", [page[0].score_cents])
            rows_before = 0 if after is None else self._count(
                head, params, "score > ? OR (score = ? AND learner_id <= ?)",
                [after[0], after[0], after[1]])
            entries = board_entries(page, first_rank, rows_before, anonymous=anonymous)
        more = len(rows) > limit
        return BoardAnswer(
            policy=PolicyRef(id=policy, version=version), period=period, org=org,
            entries=entries,
            next_cursor=encode_cursor(page[-1].score_cents, page[-1].learner_id)
            if more and page else None,
        )

    def _count(self, head: str, params: list[Any], condition: str, values: list[Any]) -> int:
        rows = self.views.query(head + f"SELECT COUNT(*) FROM scored WHERE {condition}",
                                [*params, *values])
        return int(rows[0][0])

    def rank(self, policy: str, period: str, learner_id: str,
             org: str | None = None) -> dict[str, Any]:
        version = self._check(policy, period, org)
        head, params = self._scored(org)
        params += [policy, period]
        rows = self.views.query(head + "SELECT score FROM scored WHERE learner_id = ?",
                                [*params, learner_id])
        if not rows:
            where = f" in the subtree of org {org}" if org else ""
            raise LearnerNotRegisteredError(f"learner {learner_id} is not on this board{where}")
        score = int(rows[0][0])
        rank = 1 + self._count(head, params, "score > ?", [score])
        return {"policy": {"id": policy, "version": version}, "period": period, "org": org,
                "learner_id": learner_id, "rank": rank, "score": f"{score / 100:.2f}",
                "of": self._count(head, params, "1 = 1", [])}

    def board_is_public(self, org: str) -> bool:
        """The nearest explicit opt-in or opt-out up the org tree decides; the default is off."""
        parents = {r[0]: (r[1], r[2]) for r in self.views.query(
            "SELECT org_id, parent_id, board_published FROM v_orgs")}
        current: str | None = org
        while current is not None and current in parents:
            parent, published = parents[current]
            if published is not None:
                return bool(published)
            current = parent
        return False

    def stored_balance(self, learner_id: str, policy: str, period: str) -> BalanceAnswer | None:
        rows = self.views.query(
            "SELECT body FROM v_balances WHERE learner_id = ? AND policy = ? AND period = ?",
            (learner_id, policy, period))
        return BalanceAnswer.model_validate(json.loads(rows[0][0])) if rows else None


def _subtree_learners(views: ViewStore, org: str) -> list[tuple[Any, ...]]:
    """(learner_id, name, org_id, rank, registered_year) of every learner under `org`."""
    if not views.query("SELECT 1 FROM v_orgs WHERE org_id = ?", (org,)):
        raise OrgNotRegisteredError(f"org {org} is not registered", field="org")
    return views.query(
        "WITH RECURSIVE subtree(org_id) AS (SELECT org_id FROM v_orgs WHERE org_id = ? "
        "UNION ALL SELECT o.org_id FROM v_orgs o JOIN subtree s ON o.parent_id = s.org_id) "
        "SELECT l.learner_id, l.name, l.org_id, l.rank, l.registered_year FROM v_learners l "
        "JOIN subtree s ON l.org_id = s.org_id ORDER BY l.learner_id", (org,))


def compliance(views: ViewStore, ledger: StudyLedger, org: str, policy: str,
               period: str) -> dict[str, Any]:
    """Learners of an org subtree short of a requirement in the period, with shortfalls."""
    pack = load_pack(policy)
    parsed = parse_period(pack, period)
    members = [m for m in _subtree_learners(views, org) if m[4] <= parsed.last]
    stored = {r[0]: r[1] for r in views.query(
        "SELECT learner_id, body FROM v_balances WHERE policy = ? AND period = ?",
        (policy, period))}
    short = []
    for learner_id, name, org_id, _, _ in members:
        if learner_id in stored:
            answer = BalanceAnswer.model_validate_json(stored[learner_id])
        else:  # no facts in the period: the answer of the registration alone
            answer = ledger.balance(learner_id, policy, period)
        if answer.status == "short":
            body = answer.model_dump(mode="json")
            short.append({
                "learner_id": learner_id, "name": name, "org_id": org_id,
                "shortfalls": [r for r in body["requirements"] if not r["met"]],
                "promotion": body["promotion"],
            })
    return {"org": org, "policy": {"id": pack.id, "version": pack.version},
            "period": period, "learners_in_scope": len(members), "short": short}


def org_statistics(views: ViewStore, org: str, policy: str, year: int) -> dict[str, Any]:
    """Learners, share with any credit, mean and median score, required-course hours."""
    pack = load_pack(policy)
    members = [m for m in _subtree_learners(views, org) if m[4] <= year]
    rows = {r[0]: (int(r[1]), int(r[2])) for r in views.query(
        "SELECT learner_id, score_cents, required_hours_cents FROM v_balances "
        "WHERE policy = ? AND period = ?", (policy, str(year)))}
    scores = [rows.get(m[0], (0, 0))[0] for m in members]
    required = sum(rows.get(m[0], (0, 0))[1] for m in members)
    with_credit = sum(1 for s in scores if s > 0)
    return {
        "org": org, "policy": {"id": pack.id, "version": pack.version}, "year": year,
        "learners": len(members),
        "share_with_credit": f"{with_credit / len(members):.4f}" if members else "0.0000",
        "mean_score": f"{statistics.fmean(scores) / 100:.2f}" if scores else "0.00",
        "median_score": f"{statistics.median(scores) / 100:.2f}" if scores else "0.00",
        "required_course_hours": f"{required / 100:.2f}",
    }


def history(ledger: StudyLedger, learner_id: str, *, as_of: datetime | None = None,
            limit: int = 100, cursor: str | None = None) -> TrailPage:
    """A page of the learner's audit trail; the cursor is the last version shown."""
    after = 0
    if cursor:
        if not cursor.isdigit():
            raise InvalidCursorError(f"cursor {cursor!r} is not a history cursor")
        after = int(cursor)
    events: list[Any] = list(ledger.events.get(LearnerArchive.id_for(learner_id)))
    if not events:
        raise LearnerNotRegisteredError(f"learner {learner_id} is not registered")
    trail = [TrailFact(e.originator_version, RecordedFact(e.event_id, e.fact, e.timestamp),
                       e.hash, e.prev_hash) for e in events]
    entries = audit_trail(trail, [load_pack(p) for p in SHIPPED_PACKS], as_of)
    page = [e for e in entries if e.version > after][: max(1, min(limit, MAX_PAGE))]
    more = bool(page) and page[-1].version < entries[-1].version
    return TrailPage(learner_id=learner_id, as_of=as_of, entries=page,
                     next_cursor=str(page[-1].version) if more else None)
