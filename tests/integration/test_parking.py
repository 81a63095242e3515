"""Facts that arrive before what they depend on are parked and released, on both stores."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

from domain.application import StudyLedger
from infra.bootstrap import build_ledger
from infra.files.jsonl_ingest import ingest_file
from infra.sample.district import write_demo
from tests.factories import REGISTRATION, SESSION, incoming

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
ORG = incoming("org.registered", {"org_id": "500104-07", "name": "跃进村街道", "parent_id": None},
               learner_id=None, at="2021-01-01T09:00:00+08:00", external_id="org-1")
LEARNER = incoming("learner.registered", REGISTRATION, at="2021-01-04T09:00:00+08:00",
                   external_id="reg-L1")


def record(ledger: StudyLedger, *facts, now=NOW, scope=None):
    return ledger.record_facts(list(facts), now=now, channel="test", within_org=scope)


def statuses(results):
    return [r.status for r in results]


def session(external_id, **payload):
    return incoming("study_session.recorded", SESSION | payload, external_id=external_id)


def test_facts_before_their_learner_and_org_are_released_in_arrival_order(ledger):
    first, second = session("s1", minutes=10), session("s2", minutes=20)
    assert statuses(record(ledger, first)) == ["parked"]
    assert statuses(record(ledger, second)) == ["parked"]
    assert statuses(record(ledger, LEARNER)) == ["parked"]  # its org is not there either
    assert ledger.parked_count() == 3
    assert statuses(record(ledger, ORG)) == ["stored"]
    assert ledger.parked_count() == 0
    assert [f.fact["external_id"] for f in ledger.facts_of("L1")] == ["reg-L1", "s1", "s2"]
    report = ledger.verify_learner("L1")
    assert report.broken is None and report.links_checked == 3


def test_order_inside_one_batch_does_not_matter(ledger):
    results = record(ledger, session("s1"), LEARNER, ORG)
    assert statuses(results) == ["stored", "stored", "stored"]
    assert all(r.position is not None for r in results)
    assert ledger.parked_count() == 0


def test_a_parked_fact_resent_answers_parked_and_other_content_is_a_conflict(ledger):
    record(ledger, ORG)
    assert statuses(record(ledger, session("s1", minutes=10))) == ["parked"]
    [again] = record(ledger, session("s1", minutes=10))
    assert (again.status, again.error.waits_for) == ("parked", "learner:L1")
    assert statuses(record(ledger, session("s1", minutes=99))) == ["conflict"]
    assert statuses(record(ledger, LEARNER, session("s1", minutes=10))) == ["stored", "stored"]
    assert statuses(record(ledger, session("s1", minutes=10))) == ["duplicate"]


def test_review_before_submission_and_void_before_target_are_released(ledger):
    record(ledger, ORG, LEARNER)
    submit = incoming("assignment.submitted", {"assignment_id": "A1", "kind": "reflection",
                                               "title": "学习体会"}, external_id="sub-A1")
    review = incoming("assignment.reviewed", {"assignment_id": "A1", "reviewer_id": "R1",
                                              "decision": "accepted", "score": 90},
                      external_id="rev-A1")
    void = incoming("record.voided", {"target_event_id": str(submit.event_id),
                                      "reason": "代学代考"}, external_id="void-A1")
    assert statuses(record(ledger, review)) == ["parked"]
    assert statuses(record(ledger, void)) == ["parked"]
    assert statuses(record(ledger, submit)) == ["stored"]
    assert [f.type for f in ledger.facts_of("L1")] == [
        "learner.registered", "assignment.submitted", "assignment.reviewed", "record.voided"]
    answer = ledger.balance("L1", "dadukou-double-100", "2023")
    assert answer.categories["self_study"].raw == 0  # the void removed the work and its credit


def test_a_child_org_before_its_parent_is_parked_not_out_of_scope(ledger):
    root = incoming("org.registered", {"org_id": "500105", "name": "新区", "parent_id": None},
                    learner_id=None, external_id="o-root")
    child = incoming("org.registered", {"org_id": "500105-01", "name": "一街道",
                                        "parent_id": "500105"}, learner_id=None,
                     external_id="o-child")
    [parked] = record(ledger, child, scope="500105")
    assert (parked.status, parked.error.waits_for, parked.error.field) == (
        "parked", "org:500105", "payload.parent_id")
    # A key made for an org not registered yet may register exactly that org.
    assert statuses(record(ledger, root, scope="500105")) == ["stored"]
    assert ledger.parked_count() == 0


def test_a_released_fact_is_checked_against_its_writer_scope(ledger):
    other = incoming("org.registered", {"org_id": "600000", "name": "别区", "parent_id": None},
                     learner_id=None, external_id="o-other")
    record(ledger, ORG, other)
    stray = session("s1")
    assert statuses(record(ledger, stray, scope="600000")) == ["parked"]
    record(ledger, LEARNER)  # lands in 500104-07, outside the stray fact's writer's subtree
    assert ledger.parked_count() == 0
    [letter] = ledger.parking_index.list_dead_letters(unresolved=True)
    assert (letter.fact.event_id, letter.fact.code) == (stray.event_id, "out_of_scope")
    assert [f.fact["external_id"] for f in ledger.facts_of("L1")] == ["reg-L1"]


def test_parked_past_the_timeout_becomes_a_dead_letter_that_redrive_stores(ledger):
    ledger.park_timeout = timedelta(hours=1)
    record(ledger, ORG)
    stray = session("s1")
    record(ledger, stray)
    assert ledger.expire_parked(NOW + timedelta(minutes=59)) == []
    [expired] = ledger.expire_parked(NOW + timedelta(hours=2))
    assert expired.event_id == stray.event_id and ledger.parked_count() == 0
    [letter] = ledger.parking_index.list_dead_letters(unresolved=True)
    assert letter.fact.code == "prerequisite_timeout" and "learner L1" in letter.fact.reason
    record(ledger, LEARNER, now=NOW + timedelta(hours=3))
    assert len(ledger.facts_of("L1")) == 1  # a dead letter is not released by itself
    report = ledger.redrive(NOW + timedelta(hours=3))
    assert report.counts == {"stored": 1} and not report.failures
    assert [f.fact["external_id"] for f in ledger.facts_of("L1")] == ["reg-L1", "s1"]
    assert ledger.redrive(NOW + timedelta(hours=4)).counts == {}  # resolved: not sent again


def _balances(ledger: StudyLedger, learner_ids: list[str]) -> dict[str, object]:
    return {lid: (ledger.balance(lid, "dadukou-double-100", "2021-2025").model_dump(),
                  ledger.balance(lid, "cadre-regs-2023", "2023").model_dump())
            for lid in learner_ids}


def test_a_shuffled_district_ends_with_the_balances_of_the_ordered_one(tmp_path: Path,
                                                                       store_settings):
    """The demo district, its lines shuffled (as interleaved partitions or a file sorted by
    anything but dependency would deliver them), in small batches so that most facts
    arrive before what they need."""
    ordered = tmp_path / "ordered.jsonl"
    write_demo(ordered, learners=12, seed=7)
    lines = ordered.read_text(encoding="utf-8").splitlines()
    random.Random(11).shuffle(lines)
    shuffled = tmp_path / "shuffled.jsonl"
    shuffled.write_text("\n".join(lines) + "\n", encoding="utf-8")

    reference = build_ledger(store_settings.model_copy(
        update={"database_url": f"sqlite:///{tmp_path / 'reference.db'}"}))
    subject = build_ledger(store_settings)
    try:
        first = ingest_file(reference, ordered, batch_size=50)
        second = ingest_file(subject, shuffled, batch_size=50)
        assert second.stored == first.stored and second.parked == first.parked
        assert second.rejected == first.rejected
        learner_ids = sorted({json.loads(line)["learner_id"] for line in lines
                              if '"learner.registered"' in line})
        assert len(learner_ids) == 12
        assert _balances(subject, learner_ids) == _balances(reference, learner_ids)
        assert all(r.broken is None for r in subject.verify_all())
    finally:
        reference.close()
        subject.close()


def test_a_void_of_another_learners_fact_is_refused_not_parked(ledger):
    other = incoming("learner.registered", REGISTRATION, learner_id="L2", external_id="reg-L2")
    theirs = incoming("study_session.recorded", SESSION, learner_id="L2", external_id="s-L2")
    record(ledger, ORG, LEARNER, other, theirs)
    void = incoming("record.voided", {"target_event_id": str(theirs.event_id), "reason": "x"},
                    external_id="void-other")
    [result] = record(ledger, void)
    assert (result.status, result.error.code) == ("rejected", "void_target_unknown")
    assert ledger.parked_count() == 0


def test_a_key_learns_nothing_of_facts_outside_its_subtree(ledger):
    other = incoming("org.registered", {"org_id": "600000", "name": "别区", "parent_id": None},
                     learner_id=None, external_id="o-other")
    fact = session("s1", minutes=10)
    record(ledger, ORG, LEARNER, other, fact)
    same, guessed = session("s1", minutes=10), session("s1", minutes=11)
    results = record(ledger, same, guessed, scope="600000")
    assert [(r.status, r.error.code) for r in results] == [("rejected", "out_of_scope")] * 2
