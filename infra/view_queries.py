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
from infra.view_store import ALL_ORGS, ViewStore
from projections.audit_trail import Asked, TrailFact, TrailPage, audit_trail, empty_trail_note
from projections.ranking_board import (
    BoardAnswer,
    ScoredLearner,
    ScoreHistogram,
    board_entries,
    decode_cursor,
    encode_cursor,
    published_orgs,
)

MAX_PAGE = 500


class ViewQueries:
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
             org: str | None = None) -> dict[str, Any]:
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
        return {"policy": {"id": policy, "version": version}, "period": period, "org": org,
                "learner_id": learner_id, "rank": histogram.rank_of(score),
                "score": f"{score / 100:.2f}", "of": histogram.members}

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
