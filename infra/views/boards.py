"""Board reads over the read tables: a page of a ranking board, a learner's rank, whether
a board is public, a stored balance. Used through infra.views.reads.

An org's board holds every learner registered in its subtree; a learner with no credits in
the period scores 0. Pages are keyset-paginated on (score desc, learner_id).
"""

from __future__ import annotations

import json

from domain.credits.balance import BalanceAnswer, PolicyRef, parse_period
from domain.errors import (
    LearnerNotRegisteredError,
    OrgNotRegisteredError,
    PolicyError,
)
from domain.org_tree import published_orgs
from domain.policy.pack import load_pack
from infra.views.writer import ALL_ORGS, ViewStore
from projections.answers import RankAnswer
from projections.ranking_board import (
    BoardAnswer,
    ScoredLearner,
    ScoreHistogram,
    board_entries,
    decode_cursor,
    encode_cursor,
)

MAX_PAGE = 500


class BoardQueries:
    def __init__(self, views: ViewStore) -> None:
        self.views = views

    def _check(self, policy: str, period: str, org: str | None) -> str:
        pack = load_pack(policy)
        parsed = parse_period(pack, period)
        if not parsed.is_cycle:
            raise PolicyError(f"boards rank whole cycles; {period!r} is a year", field="period")
        if org is not None and not self.views.query(
                "SELECT 1 FROM v_orgs WHERE org_id = ?", (org,)):
            raise OrgNotRegisteredError(f"org {org} is not registered", field="org")
        return pack.version

    def _histogram(self, policy: str, period: str, board: str) -> ScoreHistogram:
        counts = self.views.query(
            "SELECT score_cents, n FROM v_board_counts WHERE policy = ? AND period = ? "
            "AND org_id = ?", (policy, period, board))
        members = self.views.query("SELECT n FROM v_member_counts WHERE org_id = ?", (board,))
        return ScoreHistogram([(int(s), int(n)) for s, n in counts],
                              int(members[0][0]) if members else 0)

    def _scored_page(self, policy: str, period: str, board: str, sign: str,
                     after: tuple[int, str] | None, limit: int) -> list[ScoredLearner]:
        """Non-zero scores of one sign, in board order, after the cursor."""
        where, params = "", []
        if after is not None:
            where = "AND (score_cents < ? OR (score_cents = ? AND learner_id > ?)) "
            params = [after[0], after[0], after[1]]
        rows = self.views.query(
            "SELECT learner_id, name, unit_id, score_cents FROM v_board WHERE policy = ? AND "
            f"period = ? AND org_id = ? AND score_cents {sign} 0 {where}"
            "ORDER BY score_cents DESC, learner_id LIMIT ?",
            [policy, period, board, *params, limit])
        return [ScoredLearner(r[0], r[1], r[2], int(r[3])) for r in rows]

    def _zero_page(self, policy: str, period: str, board: str, after_id: str | None,
                   limit: int) -> list[ScoredLearner]:
        """Members without a non-zero score, by learner id."""
        rows = self.views.query(
            "SELECT m.learner_id, m.name, m.unit_id FROM v_members m WHERE m.org_id = ? "
            "AND m.learner_id > ? AND NOT EXISTS (SELECT 1 FROM v_board b WHERE "
            "b.policy = ? AND b.period = ? AND b.org_id = m.org_id AND "
            "b.learner_id = m.learner_id) ORDER BY m.learner_id LIMIT ?",
            (board, after_id or "", policy, period, limit))
        return [ScoredLearner(r[0], r[1], r[2], 0) for r in rows]

    def board(self, policy: str, period: str, *, org: str | None = None, limit: int = 50,
              cursor: str | None = None, anonymous: bool = False) -> BoardAnswer:
        """A page of the board: positive scores, then the zeros by learner id, then the
        negative scores. Each part is an index range read; ranks come from the histogram."""
        version = self._check(policy, period, org)
        limit = max(1, min(limit, MAX_PAGE))
        board = org or ALL_ORGS
        after = decode_cursor(cursor) if cursor else None
        want = limit + 1
        page: list[ScoredLearner] = []
        if after is None or after[0] > 0:
            page += self._scored_page(policy, period, board, ">", after, want)
        if len(page) < want and (after is None or after[0] >= 0):
            after_id = after[1] if after is not None and after[0] == 0 else None
            page += self._zero_page(policy, period, board, after_id, want - len(page))
        if len(page) < want:
            below = after if after is not None and after[0] < 0 else None
            page += self._scored_page(policy, period, board, "<", below, want - len(page))
        shown = page[:limit]
        entries = board_entries(shown, self._histogram(policy, period, board),
                                anonymous=anonymous) if shown else []
        return BoardAnswer(
            policy=PolicyRef(id=policy, version=version), period=period, org=org,
            entries=entries,
            next_cursor=encode_cursor(shown[-1].score_cents, shown[-1].learner_id)
            if len(page) > limit else None,
        )

    def rank(self, policy: str, period: str, learner_id: str,
             org: str | None = None) -> RankAnswer:
        version = self._check(policy, period, org)
        board = org or ALL_ORGS
        if not self.views.query("SELECT 1 FROM v_members WHERE org_id = ? AND learner_id = ?",
                                (board, learner_id)):
            where = f" in the subtree of org {org}" if org else ""
            raise LearnerNotRegisteredError(f"learner {learner_id} is not on this board{where}")
        # The learner's own balance row holds the same score, under its primary key.
        rows = self.views.query(
            "SELECT score_cents FROM v_balances WHERE learner_id = ? AND policy = ? AND "
            "period = ?", (learner_id, policy, period))
        score = int(rows[0][0]) if rows else 0
        histogram = self._histogram(policy, period, board)
        return RankAnswer(policy=PolicyRef(id=policy, version=version), period=period, org=org,
                          learner_id=learner_id, rank=histogram.rank_of(score),
                          score=f"{score / 100:.2f}", of=histogram.members)

    def board_is_public(self, org: str) -> bool:
        """The nearest explicit opt-in or opt-out up the org tree decides; the default is off."""
        return org in published_orgs((r[0], r[1], None if r[2] is None else bool(r[2]))
                                     for r in self.views.query(
            "SELECT org_id, parent_id, board_published FROM v_orgs"))

    def stored_balance(self, learner_id: str, policy: str, period: str) -> BalanceAnswer | None:
        rows = self.views.query(
            "SELECT body FROM v_balances WHERE learner_id = ? AND policy = ? AND period = ?",
            (learner_id, policy, period))
        return BalanceAnswer.model_validate(json.loads(rows[0][0])) if rows else None
