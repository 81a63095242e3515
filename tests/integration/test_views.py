"""The read views on each backend: boards, ranks and stored balances equal the calculus."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from domain.errors import LearnerNotRegisteredError, OrgNotRegisteredError, PolicyError
from infra.bootstrap import build_projector
from infra.views.boards import BoardQueries
from infra.views.reads import history
from infra.views.reports import compliance, org_statistics
from tests.factories import REGISTRATION, incoming

NOW = datetime(2026, 11, 22, tzinfo=UTC)
POLICY, CYCLE = "dadukou-double-100", "2021-2025"


def as_json(answer):
    """An answer as the API and the CLI's --json print it."""
    return answer.model_dump(mode="json")


def org(org_id, parent=None):
    return incoming("org.registered", {"org_id": org_id, "name": f"单位{org_id}",
                                       "parent_id": parent}, learner_id=None)


def publish(org_id, published):
    return incoming("org.board_published", {"org_id": org_id, "published": published},
                    learner_id=None)


def learner(learner_id, org_id, name="张三明"):
    return incoming("learner.registered", REGISTRATION | {"org_id": org_id, "name": name},
                    learner_id=learner_id, at="2021-01-04T09:00:00+08:00")


def training(learner_id, hours, external_id=None):
    return incoming("training.attended", {"program_id": "P", "kind": "thematic",
                                          "hours": hours, "leave_hours": 0},
                    learner_id=learner_id, at="2022-05-01T10:00:00+08:00",
                    external_id=external_id)


@pytest.fixture
def district(ledger, store_settings):
    """R -> A -> A1, R -> B. Scores: L1 30, L2 20, L3 20, L5 10, L4 nothing."""
    facts = [org("R"), org("A", "R"), org("A1", "A"), org("B", "R"), publish("A", True),
             learner("L1", "A"), learner("L2", "A1", "欧阳明华"), learner("L3", "B"),
             learner("L4", "A1"), learner("L5", "A"),
             training("L1", 120, "t-L1"), training("L2", 80), training("L3", 80),
             training("L5", 40)]
    results = ledger.record_facts(facts, now=NOW, channel="t")
    assert {r.status for r in results} == {"stored"}
    projector = build_projector(store_settings, ledger)
    projector.run_once()
    yield ledger, projector, BoardQueries(projector.views)
    projector.views.close()


def ranked(answer):
    body = answer.model_dump(mode="json")
    return [(e["rank"], e["learner_id"], e["score"]) for e in body["entries"]]


def test_board_ranks_the_whole_subtree_with_shared_ranks_and_zero_scores(district):
    _, _, queries = district
    assert ranked(queries.board(POLICY, CYCLE, org="R")) == [
        (1, "L1", "30.00"), (2, "L2", "20.00"), (2, "L3", "20.00"), (4, "L5", "10.00"),
        (5, "L4", "0.00")]


def test_org_board_holds_only_its_subtree(district):
    _, _, queries = district
    assert [e.learner_id for e in queries.board(POLICY, CYCLE, org="A").entries] == [
        "L1", "L2", "L5", "L4"]


def test_paging_with_cursors_walks_the_same_board(district):
    _, _, queries = district
    whole = ranked(queries.board(POLICY, CYCLE, org="R"))
    walked, cursor = [], None
    while True:
        page = queries.board(POLICY, CYCLE, org="R", limit=2, cursor=cursor)
        walked += ranked(page)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert walked == whole


def test_anonymous_board_has_masked_names_and_no_learner_ids(district):
    _, _, queries = district
    entries = queries.board(POLICY, CYCLE, org="A", anonymous=True).entries
    assert {e.learner_id for e in entries} == {None}
    assert [e.name for e in entries][:2] == ["张*明", "欧**华"]


def test_rank_of_one_learner(district):
    _, _, queries = district
    assert {k: v for k, v in as_json(queries.rank(POLICY, CYCLE, "L3", org="R")).items()
            if k in ("rank", "score", "of")} == {"rank": 2, "score": "20.00", "of": 5}


def test_boards_are_public_by_the_nearest_explicit_choice(district):
    _, _, queries = district
    assert [queries.board_is_public(o) for o in ("R", "A", "A1", "B")] == [
        False, True, True, False]


def test_stored_balances_equal_the_calculus(district):
    ledger, _, queries = district
    for learner_id in ("L1", "L2", "L3", "L4", "L5"):
        for policy in ("dadukou-double-100", "cadre-regs-2023"):
            for period in (CYCLE, "2021", "2022"):
                assert queries.stored_balance(learner_id, policy, period) == ledger.balance(
                    learner_id, policy, period)


def test_later_facts_move_the_board_after_projection(district):
    ledger, projector, queries = district
    void = incoming("record.voided", {"target_event_id": str(training("L1", 120, "t-L1")
                                                             .event_id), "reason": "代学"},
                    learner_id="L1")
    transfer = incoming("learner.transferred", {"org_id": "A"}, learner_id="L3")
    ledger.record_facts([void, transfer], now=NOW, channel="t")
    projector.run_once()
    assert ranked(queries.board(POLICY, CYCLE, org="A")) == [
        (1, "L2", "20.00"), (1, "L3", "20.00"), (3, "L5", "10.00"), (4, "L1", "0.00"),
        (4, "L4", "0.00")]


def test_board_of_a_year_or_an_unknown_org_is_refused(district):
    _, _, queries = district
    with pytest.raises(PolicyError, match="year"):
        queries.board(POLICY, "2022")
    with pytest.raises(OrgNotRegisteredError):
        queries.board(POLICY, CYCLE, org="nowhere")


def test_history_shows_a_void_on_both_facts_and_as_of_shows_the_record_before_it(district):
    ledger, _, _ = district
    target = training("L1", 120, "t-L1")
    before_void = datetime.now(UTC)
    void = incoming("record.voided", {"target_event_id": str(target.event_id),
                                      "reason": "代学"}, learner_id="L1")
    ledger.record_facts([void], now=NOW, channel="t")
    page = history(ledger, "L1")
    voided, voiding = page.entries[1], page.entries[2]
    assert voided.voided_by == void.event_id
    effects = [(e["policy"], e["category"], e["amount"], e["status"])
               for e in voided.model_dump(mode="json")["effects"]]
    assert effects == [("dadukou-double-100", "basic", "30.00", "removed"),
                       ("cadre-regs-2023", "centralized_hours", "120.00", "removed")]
    assert [e["amount"] for e in voiding.model_dump(mode="json")["effects"]] == [
        "-30.00", "-120.00"]
    earlier = history(ledger, "L1", known_at=before_void)
    assert len(earlier.entries) == 2 and earlier.entries[1].voided_by is None
    assert [e.status for e in earlier.entries[1].effects] == ["counted", "counted"]
    assert earlier.entries[1].hash == voided.hash
    # The void happened in 2023: by the start of 2023 the class still counted.
    happened = history(ledger, "L1", happened_by=datetime(2023, 1, 1, tzinfo=UTC))
    assert [e.event_id for e in happened.entries] == [page.entries[0].event_id, target.event_id]
    assert [e.status for e in happened.entries[1].effects] == ["counted", "counted"]
    assert happened.note is None and happened.asked.known_at is None


def test_history_pages_with_a_cursor(district):
    ledger, _, _ = district
    first = history(ledger, "L1", limit=1)
    second = history(ledger, "L1", limit=1, cursor=first.next_cursor)
    assert [e.version for e in first.entries + second.entries] == [1, 2]
    assert second.next_cursor is None


def test_compliance_lists_everyone_short_including_learners_without_facts(district):
    ledger, projector, _ = district
    answer = as_json(compliance(projector.views, ledger, "A", POLICY, "2022"))
    assert answer["learners_in_scope"] == 4
    short = {item["learner_id"]: item for item in answer["short"]}
    assert set(short) == {"L1", "L2", "L4", "L5"}  # no one has comprehensive credits
    assert short["L4"]["shortfalls"][0] == {"name": "basic", "required": "40.00",
                                           "actual": "0.00", "shortfall": "40.00",
                                           "met": False, "year": 2022}


def test_org_statistics_for_a_year(district):
    _, projector, _ = district
    stats = as_json(org_statistics(projector.views, "R", POLICY, 2022))
    assert {k: stats[k] for k in ("learners", "share_with_credit", "mean_score",
                                  "median_score")} == {
        "learners": 5, "share_with_credit": "0.8000", "mean_score": "16.00",
        "median_score": "20.00"}


def penalty(learner_id, severity):
    return incoming("penalty.recorded", {"severity": severity, "reason": "失误"},
                    learner_id=learner_id, at="2023-03-01T10:00:00+08:00")


def test_negative_scores_rank_after_the_zeros_and_paging_crosses_every_part(district):
    ledger, projector, queries = district
    ledger.record_facts([learner("L6", "B"), learner("L7", "A1"), penalty("L6", "major"),
                         penalty("L5", "serious")], now=NOW, channel="t")
    projector.run_once()
    whole = ranked(queries.board(POLICY, CYCLE, org="R"))
    assert whole == [(1, "L1", "30.00"), (2, "L2", "20.00"), (2, "L3", "20.00"),
                     (4, "L4", "0.00"), (4, "L7", "0.00"), (6, "L6", "-20.00"),
                     (7, "L5", "-30.00")]
    for size in (1, 2, 3):
        walked, cursor = [], None
        while True:
            page = queries.board(POLICY, CYCLE, org="R", limit=size, cursor=cursor)
            walked += ranked(page)
            if (cursor := page.next_cursor) is None:
                break
        assert walked == whole
    assert queries.rank(POLICY, CYCLE, "L6", org="R").rank == 6
    assert queries.rank(POLICY, CYCLE, "L7").rank == 4  # the board of every org


def test_a_transfer_moves_the_learner_between_boards_and_their_counts(district):
    ledger, projector, queries = district
    ledger.record_facts([incoming("learner.transferred", {"org_id": "A1"},
                                  learner_id="L3")], now=NOW, channel="t")
    projector.run_once()
    assert ranked(queries.board(POLICY, CYCLE, org="B")) == []
    assert as_json(queries.rank(POLICY, CYCLE, "L3", org="A1")) == {
        "policy": {"id": POLICY, "version": "2"}, "period": CYCLE, "org": "A1",
        "learner_id": "L3", "rank": 1, "score": "20.00", "of": 3}
    with pytest.raises(LearnerNotRegisteredError, match="not on this board"):
        queries.rank(POLICY, CYCLE, "L3", org="B")
