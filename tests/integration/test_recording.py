"""Recording facts through the real application, on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from domain.application import StudyLedger
from domain.identity import learner_archive_id
from infra.bootstrap import build_ledger
from tests.conftest import sqlite_settings
from tests.factories import REGISTRATION, SESSION, incoming

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
ORG = incoming("org.registered", {"org_id": "500104-07", "name": "跃进村街道", "parent_id": None},
               learner_id=None, at="2021-01-01T09:00:00+08:00", external_id="org-1")
LEARNER = incoming("learner.registered", REGISTRATION, at="2021-01-04T09:00:00+08:00",
                   external_id="reg-L1")


def record(ledger: StudyLedger, *facts):
    return ledger.record_facts(list(facts), now=NOW, channel="test")


def statuses(results):
    return [r.status for r in results]


def codes(results):
    return [r.error.code if r.error else None for r in results]


@pytest.fixture
def registered_ledger(ledger):
    assert statuses(record(ledger, ORG, LEARNER)) == ["stored", "stored"]
    return ledger


def session_fact(external_id="s1", **payload):
    return incoming("study_session.recorded", SESSION | payload, external_id=external_id)


def test_new_fact_is_stored_with_its_notification_position(registered_ledger):
    [result] = record(registered_ledger, session_fact())
    assert (result.status, result.position) == ("stored", 3)


def test_resend_is_a_duplicate_that_answers_the_original_position(registered_ledger):
    [first] = record(registered_ledger, session_fact())
    [again] = record(registered_ledger, session_fact())
    assert (again.status, again.position, again.event_id) == ("duplicate", first.position,
                                                                first.event_id)
    assert len(registered_ledger.facts_of("L1")) == 2


def test_same_key_with_other_content_is_a_conflict_and_changes_nothing(registered_ledger):
    record(registered_ledger, session_fact(minutes=30))
    [result] = record(registered_ledger, session_fact(minutes=45))
    assert (result.status, result.error.code) == ("conflict", "conflict")
    assert registered_ledger.facts_of("L1")[-1].payload["minutes"] == "30"


def test_same_key_sent_for_another_learner_is_a_conflict(registered_ledger):
    other = incoming("learner.registered", REGISTRATION, learner_id="L2", external_id="reg-L2")
    record(registered_ledger, other, session_fact("shared-key"))
    stolen = incoming("study_session.recorded", SESSION, learner_id="L2",
                      external_id="shared-key")
    assert statuses(record(registered_ledger, stolen)) == ["conflict"]
    assert len(registered_ledger.facts_of("L2")) == 1


def test_repeats_within_one_batch_are_duplicate_or_conflict(registered_ledger):
    results = record(registered_ledger, session_fact("k"), session_fact("k"),
                     session_fact("k", minutes=99))
    assert statuses(results) == ["stored", "duplicate", "conflict"]
    assert results[1].position == results[0].position


def test_rejected_fact_leaves_its_batch_neighbours_stored(registered_ledger):
    again = incoming("learner.registered", REGISTRATION, external_id="reg-L1-again")
    results = record(registered_ledger, session_fact("a"), again, session_fact("b"))
    assert statuses(results) == ["stored", "rejected", "stored"]
    assert codes(results)[1] == "learner_already_registered"
    assert [f.fact["external_id"] for f in registered_ledger.facts_of("L1")[1:]] == ["a", "b"]


def test_review_before_its_submission_is_parked_and_its_neighbours_stored(registered_ledger):
    review = incoming("assignment.reviewed", {"assignment_id": "nope", "reviewer_id": "R",
                                              "decision": "accepted", "score": 90})
    results = record(registered_ledger, session_fact("a"), review, session_fact("b"))
    assert statuses(results) == ["stored", "parked", "stored"]
    assert (codes(results)[1], results[1].error.waits_for) == (
        "prerequisite_missing", "assignment:L1:nope")
    assert [f.fact["external_id"] for f in registered_ledger.facts_of("L1")[1:]] == ["a", "b"]


def test_fact_for_an_unregistered_learner_is_parked(registered_ledger):
    stray = incoming("study_session.recorded", SESSION, learner_id="L404")
    [result] = record(registered_ledger, stray)
    assert (result.status, result.error.code, result.error.field) == (
        "parked", "prerequisite_missing", "learner_id")
    assert result.error.waits_for == "learner:L404"
    assert [p.event_id for p in registered_ledger.parked()] == [stray.event_id]


def test_learner_of_an_unregistered_org_is_parked(ledger):
    [result] = record(ledger, LEARNER)
    assert (result.status, result.error.field, result.error.waits_for) == (
        "parked", "payload.org_id", "org:500104-07")


def test_org_and_learner_registered_in_one_batch(ledger):
    assert statuses(record(ledger, ORG, LEARNER, session_fact())) == ["stored"] * 3


def test_second_registration_of_a_learner_is_rejected(registered_ledger):
    again = incoming("learner.registered", REGISTRATION, external_id="reg-L1-again")
    assert codes(record(registered_ledger, again)) == ["learner_already_registered"]


def test_fact_more_than_five_minutes_ahead_is_rejected_four_minutes_is_not(registered_ledger):
    ahead = (NOW + timedelta(minutes=6)).isoformat()
    near = (NOW + timedelta(minutes=4)).isoformat()
    results = record(
        registered_ledger,
        incoming("study_session.recorded", SESSION, at=ahead, external_id="f1"),
        incoming("study_session.recorded", SESSION, at=near, external_id="f2"),
    )
    assert statuses(results) == ["rejected", "stored"]
    assert (results[0].error.code, results[0].error.field) == ("occurred_in_future",
                                                               "occurred_at")


def _submission(item_id="A1"):
    return incoming("assignment.submitted", {"assignment_id": item_id, "kind": "paper",
                                             "title": "调研报告"}, external_id=f"sub-{item_id}")


def _review(item_id="A1", external_id="rev-1", decision="accepted"):
    return incoming("assignment.reviewed", {"assignment_id": item_id, "reviewer_id": "R1",
                                            "decision": decision, "score": 88},
                    external_id=external_id)


def test_second_review_of_the_same_assignment_is_rejected(registered_ledger):
    results = record(registered_ledger, _submission(), _review(), _review(external_id="rev-2"))
    assert codes(results) == [None, None, "already_reviewed"]


def test_voided_review_frees_the_assignment_for_a_new_review(registered_ledger):
    sub, rev = _submission(), _review()
    voided = incoming("record.voided", {"target_event_id": str(rev.event_id), "reason": "误评"})
    results = record(registered_ledger, sub, rev, voided, _review(external_id="rev-2"))
    assert statuses(results) == ["stored"] * 4


def test_resubmission_is_allowed_after_rejection_only(registered_ledger):
    results = record(
        registered_ledger, _submission(), _review(decision="rejected"),
        incoming("assignment.submitted", {"assignment_id": "A1", "kind": "paper", "title": "t"},
                 external_id="sub-again"),
        _review(external_id="rev-2"),
        incoming("assignment.submitted", {"assignment_id": "A1", "kind": "paper", "title": "t"},
                 external_id="sub-third"),
    )
    assert codes(results) == [None, None, None, None, "already_submitted"]


def test_declaration_review_rules(registered_ledger):
    declared = incoming("declaration.submitted", {"declaration_id": "D1",
                        "activity": "theory_group_study", "hours": 4, "evidence": "记录"})

    def review(external_id, approved):
        return incoming("declaration.reviewed", {"declaration_id": "D1", "reviewer_id": "R1",
                        "decision": "approved", "approved_hours": approved},
                        external_id=external_id)

    results = record(registered_ledger, declared, review("r1", 5), review("r2", 4),
                     review("r3", 1))
    assert codes(results) == [None, "approved_hours_exceed_declared", None, "already_reviewed"]


def test_void_rules(registered_ledger):
    [target] = record(registered_ledger, session_fact())

    def void(external_id, target_id):
        return incoming("record.voided", {"target_event_id": str(target_id), "reason": "r"},
                        external_id=external_id)

    first_void = void("v1", target.event_id)
    results = record(
        registered_ledger, first_void, void("v2", target.event_id),
        void("v3", first_void.event_id), void("v4", LEARNER.event_id),
        void("v5", ORG.event_id),
    )
    assert codes(results) == [None, "already_voided", "not_voidable", "not_voidable",
                              "void_target_unknown"]  # an org's fact: never L1's to void


def test_adjustment_of_an_unknown_category_is_rejected(registered_ledger):
    typo = incoming("credits.adjusted", {"category": "self_studdy", "amount": "2", "reason": "r"})
    assert codes(record(registered_ledger, typo)) == ["unknown_category"]


def test_org_facts_need_their_parent_and_their_org(ledger):
    child = incoming("org.registered", {"org_id": "c", "name": "子单位", "parent_id": "p"},
                     learner_id=None)
    publish = incoming("org.board_published", {"org_id": "x", "published": True},
                       learner_id=None)
    results = record(ledger, child, publish)
    assert [(r.status, r.error.field, r.error.waits_for) for r in results] == [
        ("parked", "payload.parent_id", "org:p"), ("parked", "payload.org_id", "org:x")]


def test_balance_is_computed_from_the_stored_facts(registered_ledger):
    record(registered_ledger, session_fact("s1", progress="1", course_hours="3"),
           session_fact("s2", course_id="C2", progress="0.95", course_hours="2"))
    answer = registered_ledger.balance("L1", "dadukou-double-100", "2023")
    assert answer.categories["self_study"].counted == 5


def test_two_writers_racing_on_the_same_facts_store_each_once(store_settings):
    """Two application instances (as two processes would) write the same batch at once."""
    seed = build_ledger(store_settings)
    record(seed, ORG, LEARNER)
    facts = [session_fact(f"race-{i}", course_id=f"C{i}") for i in range(200)]
    outcomes: list = []
    failures: list = []
    barrier = threading.Barrier(2, timeout=30)

    def write():
        try:
            app = build_ledger(store_settings)
            app.repository.get(learner_archive_id("L1"))  # both start from the same version
            barrier.wait()
            outcomes.append(statuses(record(app, *facts)))
            app.close()
        except BaseException as exc:  # surface it: a thread's exception is otherwise lost
            failures.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=write) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert sorted(outcomes) == [["duplicate"] * 200, ["stored"] * 200]
    assert len(seed.facts_of("L1")) == 201  # the registration and the 200 sessions
    seed.close()


def test_two_writers_on_the_same_learners_under_sustained_load_both_finish(store_settings):
    """As two API workers or a consumer beside an ingest: every batch of both writers names
    the same learners. Without one writer at a time across processes, each attempt of one
    writer conflicts with the other's commit and a batch fails after its retries."""
    seed = build_ledger(store_settings)
    learners = [f"W{n:02d}" for n in range(20)]
    record(seed, ORG, *[incoming("learner.registered", REGISTRATION, learner_id=learner,
                                 at="2021-01-04T09:00:00+08:00") for learner in learners])
    failures: list = []
    barrier = threading.Barrier(2, timeout=30)

    def write(writer: str) -> None:
        try:
            app = build_ledger(store_settings)
            barrier.wait()
            for batch in range(15):
                facts = [incoming("study_session.recorded", SESSION | {"course_id": f"C{i}"},
                                  learner_id=learners[i % 20],
                                  external_id=f"{writer}-{batch}-{i}") for i in range(100)]
                assert set(statuses(record(app, *facts))) == {"stored"}
            app.close()
        except BaseException as exc:  # surface it: a thread's exception is otherwise lost
            failures.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=write, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert [len(seed.facts_of(learner)) for learner in learners] == [1 + 2 * 15 * 5] * 20
    seed.close()


def test_writer_sees_what_another_process_recorded_since_it_cached_the_archive(store_settings):
    first, second = build_ledger(store_settings), build_ledger(store_settings)
    record(first, ORG, LEARNER, session_fact("warm-cache"))  # first now caches L1
    assert statuses(record(second, _submission())) == ["stored"]
    assert statuses(record(first, _review())) == ["stored"]  # not "not_submitted"
    assert len(first.facts_of("L1")) == 4
    first.close()
    second.close()


def test_every_stored_row_is_what_the_libraries_mapper_writes_for_its_event(ledger):
    """Facts appended to an aggregate are stored from their plain values, not through the
    library's event objects and mapper: each row must still be the mapper's own bytes, so
    that the library (and an auditor with it) reads and upcasts them as ever."""
    from domain.facts import parse_fact
    from infra.sample.district import DemoWriter

    facts = [parse_fact(data) for data in DemoWriter(20210104, 12, 2021, 3).generate()]
    for start in range(0, len(facts), 100):
        ledger.record_facts(facts[start:start + 100], now=NOW, channel="test")
    rows = ledger.recorder.select_notifications(start=1, limit=100_000)
    appended = [row for row in rows if row.originator_version > 1]
    assert len(appended) > 10 * 12
    for row in rows:
        event = ledger.mapper.to_domain_event(row)
        again = ledger.mapper.to_stored_event(event)
        assert (again.topic, again.state) == (row.topic, row.state)
        assert (event.originator_id, event.originator_version) == (row.originator_id,
                                                                   row.originator_version)
    for aggregate_id in {row.originator_id for row in rows}:
        assert ledger.verify_stream(aggregate_id).broken is None


def test_a_cold_writer_reads_a_batchs_archives_at_once_as_the_library_rebuilds_them(
        store_settings, tmp_path):
    """A writer that starts with an empty cache (a restarted API worker or consumer) reads
    every recorded archive a batch names with one query; each must be the aggregate the
    library's repository rebuilds event by event, and the batch must be judged on it."""
    from domain.facts import parse_fact
    from infra.sample.district import DemoWriter

    facts = [parse_fact(data) for data in DemoWriter(20210104, 12, 2021, 3).generate()]
    half = len(facts) // 2
    warm = build_ledger(store_settings)
    for start in range(0, half, 100):
        warm.record_facts(facts[start:start + 100], now=NOW, channel="test")
    streams = {row.originator_id for row in
               warm.recorder.select_notifications(start=1, limit=100_000)}
    unknown = learner_archive_id("nobody")
    cold, library = build_ledger(store_settings), build_ledger(store_settings)
    assert cold.load_streams(sorted(streams | {unknown})) == streams
    for stream in streams:
        loaded, rebuilt = cold.repository.cache.get(stream), library.repository.get(stream)
        assert type(loaded) is type(rebuilt)
        assert vars(loaded) == vars(rebuilt)
    (tmp_path / "warm").mkdir()
    reference = build_ledger(sqlite_settings(tmp_path / "warm"))  # one writer, always warm
    for start in range(0, half, 100):
        reference.record_facts(facts[start:start + 100], now=NOW, channel="test")

    def second_half(app):
        return [(r.status, r.error.code if r.error else None)
                for start in range(half, len(facts), 100)
                for r in app.record_facts(facts[start:start + 100], now=NOW, channel="t")]

    results = second_half(cold)
    assert results == second_half(reference)
    assert sum(status == "stored" for status, _ in results) > 100
    rebuilder = build_ledger(store_settings)  # cold: every archive rebuilt by the library
    for stream in streams:
        assert vars(cold.repository.get(stream)) == vars(rebuilder.repository.get(stream))
        assert cold.verify_stream(stream).broken is None
    for app in (warm, cold, library, reference, rebuilder):
        app.close()
