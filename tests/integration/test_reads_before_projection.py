"""A read asked while the views lag behind the store sees the same org tree: an org recorded
but not projected yet is found in the archive, so a reader of its subtree is not refused."""

from __future__ import annotations

from datetime import UTC, datetime

from infra.bootstrap import build_projector, build_read_views
from tests.integration.test_views import learner, org

NOW = datetime(2026, 11, 22, tzinfo=UTC)


def test_an_org_recorded_but_not_projected_is_in_its_ancestors_subtree(ledger, store_settings):
    ledger.record_facts([org("R"), org("A", "R")], now=NOW, channel="t")
    build_projector(store_settings, ledger).run_once()
    ledger.record_facts([org("A1", "A"), learner("L9", "A1")], now=NOW, channel="t")
    reads = build_read_views(store_settings, ledger)

    assert reads.org_exists("A1")
    assert reads.in_subtree("A1", "A") and reads.in_subtree("A1", "R")
    assert not reads.in_subtree("A1", "B")
    assert reads.learner_org("L9") == "A1"
    assert not reads.org_exists("nowhere")
    assert not reads.in_subtree("nowhere", "R")


def test_once_projected_the_views_answer_the_same(ledger, store_settings):
    ledger.record_facts([org("R"), org("A", "R"), org("A1", "A"), org("B", "R")], now=NOW,
                        channel="t")
    reads = build_read_views(store_settings, ledger)
    before = {(o, a): reads.in_subtree(o, a) for o in ("A1", "B") for a in ("R", "A", "B")}
    build_projector(store_settings, ledger).run_once()
    fresh = build_read_views(store_settings, ledger)
    after = {(o, a): fresh.in_subtree(o, a) for o in ("A1", "B") for a in ("R", "A", "B")}
    assert before == after
    assert after[("A1", "A")] and not after[("B", "A")]
