"""The read tables' layout: one list of DDL, and the version that says when it changed.

When VIEWS_VERSION differs from the one a store was built with, the views are dropped and
rebuilt from the log on first use (infra.views.writer).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# Bump when a view's layout or what it holds changes (e.g. a policy pack's version): the views
# are then dropped and rebuilt from the log.
VIEWS_VERSION = "6"
TABLES = ("v_balances", "v_learners", "v_orgs", "v_tracking", "v_members", "v_board",
          "v_board_counts", "v_member_counts")
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
    # Boards, precomputed so that a page is an index range read and a rank a sum over
    # distinct scores: a learner is a member of its org and every ancestor (and of ALL_ORGS);
    # v_board holds the non-zero cycle scores per member org (zero scores are the members
    # without a row), v_board_counts how many hold each score, v_member_counts the sizes.
    "CREATE TABLE IF NOT EXISTS v_members (org_id TEXT NOT NULL, learner_id TEXT NOT NULL, "
    "name TEXT NOT NULL, unit_id TEXT NOT NULL, PRIMARY KEY (org_id, learner_id))",
    "CREATE INDEX IF NOT EXISTS v_members_learner ON v_members (learner_id)",
    "CREATE TABLE IF NOT EXISTS v_board (policy TEXT NOT NULL, period TEXT NOT NULL, "
    "org_id TEXT NOT NULL, score_cents BIGINT NOT NULL, learner_id TEXT NOT NULL, "
    "name TEXT NOT NULL, unit_id TEXT NOT NULL, PRIMARY KEY (learner_id, policy, period, org_id))",
    "CREATE INDEX IF NOT EXISTS v_board_page ON v_board "
    "(policy, period, org_id, score_cents DESC, learner_id)",
    "CREATE TABLE IF NOT EXISTS v_board_counts (policy TEXT NOT NULL, period TEXT NOT NULL, "
    "org_id TEXT NOT NULL, score_cents BIGINT NOT NULL, n BIGINT NOT NULL, "
    "PRIMARY KEY (policy, period, org_id, score_cents))",
    "CREATE TABLE IF NOT EXISTS v_member_counts (org_id TEXT PRIMARY KEY, n BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS v_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
]
PROJECTION = "views"
RUNNER_STATE = "projection_runner"


# The tables stored_layout reads: without them the views were never built.
LAYOUT_TABLES = frozenset({"v_meta", "v_tracking"})


def stored_layout(query: Callable[[str, tuple[str, ...]], list[tuple[Any, ...]]]
                  ) -> tuple[str | None, int]:
    """(the views' layout version, their position in the log) as a store holds them, read
    with any `query(sql, params)` that takes `?` placeholders; for health checks that must
    not create or upgrade the tables."""
    found = query("SELECT value FROM v_meta WHERE key = ?", ("views_version",))
    rows = query("SELECT position FROM v_tracking WHERE projection = ?", (PROJECTION,))
    return (str(found[0][0]) if found else None), (int(rows[0][0]) if rows else 0)
