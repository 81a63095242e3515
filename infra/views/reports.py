"""Org reports over the read tables: who in a subtree is short of a requirement, and an org's
statistics for a year. Members come from one subtree query; balances from v_balances, or,
for a member with no facts in the period, from the archive."""

from __future__ import annotations

import statistics
from typing import Any

from domain.application import StudyLedger
from domain.credits.balance import BalanceAnswer, PolicyRef, parse_period
from domain.errors import OrgNotRegisteredError
from domain.org_tree import MAX_DEPTH
from domain.policy.pack import load_pack
from infra.views.writer import ViewStore
from projections.answers import ComplianceAnswer, OrgStatistics, ShortLearner

# Every org at or below the first parameter, at most MAX_DEPTH levels (the org itself is
# level 1), so it holds exactly the orgs that domain.org_tree.is_within puts under it.
SUBTREE_CTE = (
    "WITH RECURSIVE subtree(org_id, depth) AS (SELECT org_id, 0 FROM v_orgs WHERE org_id = ? "
    "UNION ALL SELECT o.org_id, s.depth + 1 FROM v_orgs o JOIN subtree s "
    f"ON o.parent_id = s.org_id WHERE s.depth < {MAX_DEPTH - 1}) "
)
# The org and its ancestors, itself first.
ANCESTORS_SQL = (
    "WITH RECURSIVE up(org_id, parent_id, depth) AS (SELECT org_id, parent_id, 0 FROM v_orgs "
    "WHERE org_id = ? UNION ALL SELECT o.org_id, o.parent_id, up.depth + 1 FROM v_orgs o "
    f"JOIN up ON o.org_id = up.parent_id WHERE up.depth < {MAX_DEPTH - 1}) "
    "SELECT org_id FROM up ORDER BY depth"
)


def subtree_learners(views: ViewStore, org: str) -> list[tuple[Any, ...]]:
    """(learner_id, name, org_id, rank, registered_year) of every learner under `org`."""
    if not views.query("SELECT 1 FROM v_orgs WHERE org_id = ?", (org,)):
        raise OrgNotRegisteredError(f"org {org} is not registered", field="org")
    return views.query(
        SUBTREE_CTE + "SELECT l.learner_id, l.name, l.org_id, l.rank, l.registered_year "
        "FROM v_learners l JOIN subtree s ON l.org_id = s.org_id ORDER BY l.learner_id", (org,))


def stored_answers(views: ViewStore, policy: str, period: str) -> dict[str, str]:
    """learner id -> the stored balance answer (JSON) of every learner with one."""
    return {r[0]: r[1] for r in views.query(
        "SELECT learner_id, body FROM v_balances WHERE policy = ? AND period = ?",
        (policy, period))}


def compliance(views: ViewStore, ledger: StudyLedger, org: str, policy: str,
               period: str) -> ComplianceAnswer:
    """Learners of an org subtree short of a requirement in the period, with shortfalls."""
    pack = load_pack(policy)
    parsed = parse_period(pack, period)
    members = [m for m in subtree_learners(views, org) if m[4] <= parsed.last]
    stored = stored_answers(views, policy, period)
    short = []
    for learner_id, name, org_id, _, _ in members:
        if learner_id in stored:
            answer = BalanceAnswer.model_validate_json(stored[learner_id])
        else:  # no facts in the period: the answer of the registration alone
            answer = ledger.balance(learner_id, policy, period)
        if answer.status == "short":
            short.append(ShortLearner(
                learner_id=learner_id, name=name, org_id=org_id,
                shortfalls=[r for r in answer.requirements if not r.met],
                promotion=answer.promotion.model_dump(mode="json")
                if answer.promotion is not None else None))
    return ComplianceAnswer(org=org, policy=PolicyRef(id=pack.id, version=pack.version),
                            period=period, learners_in_scope=len(members), short=short)


def org_statistics(views: ViewStore, org: str, policy: str, year: int) -> OrgStatistics:
    """Learners, share with any credit, mean and median score, required-course hours."""
    pack = load_pack(policy)
    members = [m for m in subtree_learners(views, org) if m[4] <= year]
    rows = {r[0]: (int(r[1]), int(r[2])) for r in views.query(
        "SELECT learner_id, score_cents, required_hours_cents FROM v_balances "
        "WHERE policy = ? AND period = ?", (policy, str(year)))}
    scores = [rows.get(m[0], (0, 0))[0] for m in members]
    required = sum(rows.get(m[0], (0, 0))[1] for m in members)
    with_credit = sum(1 for s in scores if s > 0)
    return OrgStatistics(
        org=org, policy=PolicyRef(id=pack.id, version=pack.version), year=year,
        learners=len(members),
        share_with_credit=f"{with_credit / len(members):.4f}" if members else "0.0000",
        mean_score=f"{statistics.fmean(scores) / 100:.2f}" if scores else "0.00",
        median_score=f"{statistics.median(scores) / 100:.2f}" if scores else "0.00",
        required_course_hours=f"{required / 100:.2f}",
    )
