"""Reads over the read tables: ranking boards, a learner's rank, stored balances.

An org's board holds every learner registered in its subtree; a learner with no credits in
the period scores 0. Pages are keyset-paginated on (score desc, learner_id).
"""

from __future__ import annotations

import json
from typing import Any

from domain.credits.balance import BalanceAnswer, PolicyRef, parse_period
from domain.errors import LearnerNotRegisteredError, OrgNotRegisteredError, PolicyError
from domain.policy.pack import load_pack
from infra.view_store import ViewStore
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
