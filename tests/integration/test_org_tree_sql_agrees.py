"""The read side's recursive org queries (infra/views) agree with domain.org_tree, the walk the
write path's scope checks and the runner's board chains use, on each backend.

The tree gets into the views the way production puts it there: org.registered facts recorded
by the ledger and projected by the runner, with one learner registered in every org.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from domain.org_tree import MAX_DEPTH, chain_of, is_within
from infra.bootstrap import build_ledger, build_projector
from infra.settings import Settings
from infra.views.reports import ANCESTORS_SQL, SUBTREE_CTE, subtree_learners
from infra.views.writer import ViewStore
from projections.ports import ALL_ORGS
from tests.factories import REGISTRATION, incoming

NOW = datetime(2026, 11, 22, tzinfo=UTC)
Parents = dict[str, "str | None"]


def random_tree(seed: int, size: int = 200, roots: int = 3, max_depth: int = 8) -> Parents:
    """org -> parent, parents listed before their children; depth 0 for a root."""
    rng = random.Random(seed)
    parents: Parents = {}
    depth: dict[str, int] = {}
    for i in range(size):
        org_id = f"O{i:03d}"
        candidates = [o for o in parents if depth[o] < max_depth]
        parent = None if i < roots else rng.choice(candidates)
        parents[org_id] = parent
        depth[org_id] = 0 if parent is None else depth[parent] + 1
    assert max(depth.values()) >= 5, "a tree worth the name"
    return parents


def a_chain(length: int) -> Parents:
    """One line of orgs, each below the one before."""
    return {f"D{i:03d}": (f"D{i - 1:03d}" if i else None) for i in range(length)}


def project_tree(settings: Settings, parents: Parents) -> ViewStore:
    """Record the orgs and a learner in each, and run the projections over them."""
    facts = [incoming("org.registered", {"org_id": org_id, "name": f"单位{org_id}",
                                         "parent_id": parent}, learner_id=None)
             for org_id, parent in parents.items()]
    facts += [incoming("learner.registered", REGISTRATION | {"org_id": org_id},
                       learner_id=f"L-{org_id}", at="2021-01-04T09:00:00+08:00")
              for org_id in parents]
    ledger = build_ledger(settings)
    try:
        results = ledger.record_facts(facts, now=NOW, channel="test")
        assert {r.status for r in results} == {"stored"}
        projector = build_projector(settings, ledger)
        projector.run_once()
    finally:
        ledger.close()
    return projector.views


@pytest.fixture
def tree(store_settings: Settings) -> Iterator[tuple[Parents, ViewStore]]:
    parents = random_tree(seed=20261122)
    views = project_tree(store_settings, parents)
    try:
        yield parents, views
    finally:
        views.close()


def ancestors_in_sql(views: ViewStore, org_id: str) -> list[str]:
    return [str(row[0]) for row in views.query(ANCESTORS_SQL, (org_id,))]


def subtree_in_sql(views: ViewStore, org_id: str) -> set[str]:
    return {str(row[0]) for row in views.query(SUBTREE_CTE + "SELECT org_id FROM subtree",
                                               (org_id,))}


def subtree_in_domain(parents: Parents, ancestor: str) -> set[str]:
    return {org_id for org_id in parents if is_within(org_id, ancestor, parents)}


def test_the_views_hold_the_tree_as_recorded(tree):
    parents, views = tree
    assert views.org_parents() == parents


def test_every_orgs_ancestors_in_sql_are_its_chain_up_the_tree(tree):
    parents, views = tree
    for org_id in parents:
        assert set(ancestors_in_sql(views, org_id)) == set(chain_of(org_id, parents)), org_id


def test_every_orgs_subtree_in_sql_is_the_orgs_within_it(tree):
    parents, views = tree
    for org_id in parents:
        assert subtree_in_sql(views, org_id) == subtree_in_domain(parents, org_id), org_id


def test_the_learners_of_a_subtree_are_those_of_the_orgs_within_it(tree):
    parents, views = tree
    for org_id in random.Random(7).sample(sorted(parents), 40):
        found = {row[2] for row in subtree_learners(views, org_id)}
        assert found == subtree_in_domain(parents, org_id), org_id


def test_the_board_members_of_an_org_are_the_learners_of_its_subtree(tree):
    # v_members is written from the runner's chains (domain.org_tree.chain_of).
    parents, views = tree
    members: dict[str, set[str]] = {}
    for org_id, learner_id in views.query("SELECT org_id, learner_id FROM v_members"):
        members.setdefault(org_id, set()).add(learner_id)
    for org_id in parents:
        assert members[org_id] == {f"L-{o}" for o in subtree_in_domain(parents, org_id)}
    assert members[ALL_ORGS] == {f"L-{o}" for o in parents}


def test_a_subtree_of_an_org_no_view_holds_is_empty(tree):
    _, views = tree
    assert subtree_in_sql(views, "nowhere") == set()
    assert ancestors_in_sql(views, "nowhere") == []


def test_the_queries_agree_below_a_chain_deeper_than_the_walks_bound(store_settings):
    parents = a_chain(MAX_DEPTH + 3)
    views = project_tree(store_settings, parents)
    try:
        for org_id in parents:
            assert set(ancestors_in_sql(views, org_id)) == set(chain_of(org_id, parents))
        top = next(iter(parents))
        assert subtree_in_sql(views, top) == subtree_in_domain(parents, top)
    finally:
        views.close()
