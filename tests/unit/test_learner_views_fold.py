"""The read rows as pure functions of recorded facts: `learner_views` over a learner's facts,
`apply_org_fact` folded over an org's facts. No store: facts in, rows out."""

from __future__ import annotations

import json
import random
from functools import reduce

import pytest

from domain.archive import LearnerArchive
from domain.credits.lines import RecordedFact
from domain.errors import PolicyError
from projections.learner_views import (
    LearnerFold,
    LearnerRow,
    OrgRow,
    apply_org_fact,
    learner_views,
)
from tests.factories import (
    REGISTRATION,
    adjust,
    assignment,
    award,
    declaration,
    exam,
    incoming,
    penalty,
    recorded,
    registered,
    session,
    training,
    void,
)

D100, REGS = "dadukou-double-100", "cadre-regs-2023"
IN_2022 = "2022-05-01T10:00:00+08:00"
IN_2023 = "2023-05-01T10:00:00+08:00"
ONE_CYCLE = ["2021-2025", "2021", "2022", "2023", "2024", "2025"]


def rows(facts: list[RecordedFact]) -> dict[tuple[str, str], tuple[str, int, int]]:
    """(policy, period) -> (status, board score in cents, required hours in cents)."""
    return {(b.policy, b.period): (b.status, b.score_cents, b.required_hours_cents)
            for b in learner_views(facts).balances}


def body(facts: list[RecordedFact], policy: str, period: str) -> dict:
    [row] = [b for b in learner_views(facts).balances
             if (b.policy, b.period) == (policy, period)]
    return json.loads(row.body)


def transferred(org_id: str, at: str) -> RecordedFact:
    return recorded("learner.transferred", {"org_id": org_id}, at=at)


# -- the learner row ---------------------------------------------------------------------

def test_the_learner_row_is_the_registration():
    views = learner_views([registered("L7", org_id="U1")])
    assert views.learner == LearnerRow("L7", REGISTRATION["name"], "U1", REGISTRATION["rank"],
                                       2021)


def test_the_registered_year_is_taken_in_the_packs_time_zone():
    # 2021-12-31 20:00 UTC is already 2022 in Asia/Shanghai
    late = recorded("learner.registered", REGISTRATION, at="2021-12-31T20:00:00Z")
    assert learner_views([late]).learner.registered_year == 2022


def test_a_transfer_changes_the_org_of_the_learner_row_and_nothing_else_of_it():
    before = learner_views([registered(org_id="U1")]).learner
    after = learner_views([registered(org_id="U1"), transferred("U2", IN_2022)]).learner
    assert after.org_id == "U2"
    assert (after.learner_id, after.name, after.rank, after.registered_year) == (
        before.learner_id, before.name, before.rank, before.registered_year)


def test_the_latest_transfer_by_date_stands_whatever_order_they_were_recorded_in():
    facts = [registered(org_id="U1"), transferred("U3", IN_2023), transferred("U2", IN_2022)]
    assert learner_views(facts).learner.org_id == "U3"


def test_of_two_transfers_at_one_moment_the_one_recorded_later_stands():
    facts = [registered(org_id="U1"), transferred("U2", IN_2022), transferred("U3", IN_2022)]
    assert learner_views(facts).learner.org_id == "U3"


def test_the_row_and_the_archive_agree_on_the_org_after_a_transfer_dated_before_registration():
    registration = incoming("learner.registered", REGISTRATION | {"org_id": "U1"},
                            at="2021-01-04T09:00:00+08:00")
    early = incoming("learner.transferred", {"org_id": "U2"}, at="2020-06-01T00:00:00+08:00")
    archive = LearnerArchive.register(registration, "test")
    archive.record(early, "test")
    facts = [RecordedFact(f.event_id, f.canonical) for f in (registration, early)]
    assert learner_views(facts).learner.org_id == archive.org_id


def test_views_need_a_registration():
    with pytest.raises(PolicyError):
        learner_views([training(at=IN_2022)])


# -- the balance rows --------------------------------------------------------------------

def test_a_registration_alone_shows_its_cycle_and_each_year_of_it_under_every_pack():
    assert list(rows([registered()])) == [(D100, p) for p in ONE_CYCLE] + [
        (REGS, p) for p in ONE_CYCLE]
    assert set(rows([registered()]).values()) == {("short", 0, 0)}


def test_training_scores_on_its_cycle_and_its_year_only():
    # 120 hours of training: basic += 30 under dadukou-double-100
    shown = rows([registered(), training(hours=120, at=IN_2022)])
    assert shown[(D100, "2021-2025")][1] == 3000
    assert shown[(D100, "2022")][1] == 3000
    assert shown[(D100, "2023")][1] == 0


def test_a_fact_in_a_later_cycle_adds_that_cycle_and_its_years():
    shown = rows([registered(), training(at="2027-03-01T10:00:00+08:00")])
    assert [p for policy, p in shown if policy == D100] == [
        *ONE_CYCLE, "2026-2030", "2026", "2027", "2028", "2029", "2030"]


def test_a_completed_required_course_counts_its_hours_as_required_hours():
    facts = [registered(), recorded("study_session.recorded", {
        "course_id": "C9", "course_hours": "3.5", "required": True, "minutes": 200,
        "progress": "1"}, at=IN_2022)]
    shown = rows(facts)
    assert shown[(D100, "2022")][2] == 350
    assert shown[(D100, "2023")][2] == 0


def test_an_optional_course_counts_no_required_hours():
    shown = rows([registered(), session(progress="1", hours="3.5", at=IN_2022)])
    assert shown[(D100, "2022")][2] == 0
    assert shown[(D100, "2022")][1] == 350  # but it is still self study


def test_a_course_watched_below_the_threshold_earns_nothing():
    shown = rows([registered(), session(progress="0.5", at=IN_2022)])
    assert shown[(D100, "2022")][1] == 0


def test_the_body_is_the_balance_answer_of_its_period():
    answer = body([registered(), training(hours=120, at=IN_2022)], D100, "2022")
    assert (answer["learner_id"], answer["period"]) == ("L1", "2022")
    assert answer["categories"]["basic"]["counted"] == "30.00"


def test_a_void_removes_the_credit_of_its_target():
    fact = training(hours=120, at=IN_2022)
    assert rows([registered(), fact, void(fact, at=IN_2022)])[(D100, "2021-2025")][1] == 0


def test_a_voided_fact_leaves_the_views_as_if_it_had_never_been_recorded():
    start = registered()
    kept = training(hours=40, at=IN_2022)
    dropped = award("city", at=IN_2023)
    assert learner_views([start, kept, dropped, void(dropped, at=IN_2023)]) == learner_views(
        [start, kept])


def test_a_void_of_a_review_takes_back_the_assignment_credit():
    submitted, reviewed = assignment("A1", "paper", at=IN_2022)
    with_credit = rows([registered(), submitted, reviewed])[(D100, "2022")][1]
    without = rows([registered(), submitted, reviewed, void(reviewed)])[(D100, "2022")][1]
    assert (with_credit, without) == (200, 0)  # theory += 2 for a paper


def test_a_void_of_a_declaration_takes_back_the_credit_of_its_approval():
    submitted, approved = declaration("D1", hours=4, approved=3, at=IN_2022)
    assert rows([registered(), submitted, approved])[(D100, "2022")][1] == 300
    assert rows([registered(), submitted, approved, void(submitted)])[(D100, "2022")][1] == 0


def test_a_penalty_lowers_the_score_below_zero():
    assert rows([registered(), penalty("major", at=IN_2022)])[(D100, "2022")][1] == -2000


# -- fold properties ---------------------------------------------------------------------

def a_learners_facts(seed: int) -> list[RecordedFact]:
    """A registration and a seeded mix of facts over two cycles, every one at its own
    moment (ties are broken by the order recorded, which a shuffle would change)."""
    rng = random.Random(seed)
    moments = iter(rng.sample(range(2021 * 12, 2029 * 12), 40))

    def at() -> str:
        month = next(moments)
        return f"{month // 12}-{month % 12 + 1:02d}-{rng.randint(1, 28):02d}T10:00:00+08:00"

    facts = [registered(org_id="U0")]
    for i in range(12):
        kind = rng.choice(["training", "session", "exam", "award", "penalty", "adjust",
                           "transfer", "assignment", "declaration"])
        if kind == "training":
            facts.append(training(hours=rng.choice([8, 40, 120]), leave=rng.choice([0, 9]),
                                  at=at()))
        elif kind == "session":
            facts.append(session(f"C{rng.randint(1, 3)}", rng.choice(["0.5", "0.95"]),
                                 at=at()))
        elif kind == "exam":
            facts.append(exam(f"E{rng.randint(1, 2)}", rng.choice([40, 90]), attempt=i + 1,
                              at=at()))
        elif kind == "award":
            facts.append(award(rng.choice(["unit", "city"]), at=at()))
        elif kind == "penalty":
            facts.append(penalty(at=at()))
        elif kind == "adjust":
            facts.append(adjust("basic", rng.choice(["2.5", "-1"]), at=at()))
        elif kind == "transfer":
            facts.append(transferred(f"U{i}", at()))
        elif kind == "assignment":
            facts.extend(assignment(f"A{i}", "reflection", at=at()))
        else:
            facts.extend(declaration(f"D{i}", hours=5, approved=rng.choice([0, 5]), at=at()))
    voidable = [f for f in facts[1:] if f.type != "learner.transferred"]
    if voidable:
        facts.append(void(rng.choice(voidable), at=at()))
    return facts


def shuffled_keeping_what_the_archive_orders(facts: list[RecordedFact],
                                             rng: random.Random) -> list[RecordedFact]:
    """Another order the archive could have recorded the same facts in: the registration
    first, each submission before its review, each void after its target."""
    rest = facts[1:]
    rng.shuffle(rest)
    ordered: list[RecordedFact] = []
    pending = list(rest)
    while pending:
        for fact in pending:
            key = fact.payload.get("assignment_id") or fact.payload.get("declaration_id")
            needs = [f for f in pending if f is not fact and (
                (fact.type.endswith(".reviewed") and f.type.endswith(".submitted")
                 and (f.payload.get("assignment_id") or f.payload.get("declaration_id")) == key)
                or (fact.type == "record.voided"
                    and str(f.event_id) == fact.payload["target_event_id"]))]
            if not needs:
                ordered.append(fact)
                pending.remove(fact)
                break
    return [facts[0], *ordered]


@pytest.mark.parametrize("seed", range(8))
def test_the_views_do_not_depend_on_the_order_the_facts_were_recorded_in(seed):
    facts = a_learners_facts(seed)
    other = shuffled_keeping_what_the_archive_orders(facts, random.Random(seed))
    assert [f.event_id for f in other] != [f.event_id for f in facts]
    assert learner_views(other) == learner_views(facts)


@pytest.mark.parametrize("seed", range(4))
def test_the_views_leave_the_facts_they_are_given_as_they_were(seed):
    # The runner keeps each learner's list and computes again over it plus the next batch.
    facts = a_learners_facts(seed)
    given = list(facts)
    learner_views(given)
    assert given == facts


# -- the org row, a left fold ------------------------------------------------------------

def org_facts() -> list[RecordedFact]:
    def published(value: bool) -> RecordedFact:
        return recorded("org.board_published", {"org_id": "U1", "published": value},
                        learner_id=None)

    registration = recorded("org.registered", {"org_id": "U1", "name": "单位一",
                                               "parent_id": "R"}, learner_id=None)
    return [registration, published(True), published(False), published(True)]


def test_a_registered_org_has_no_board_choice_of_its_own():
    assert apply_org_fact(None, org_facts()[0]) == OrgRow("U1", "单位一", "R", None)


def test_the_last_board_publication_stands():
    facts = org_facts()
    assert reduce(apply_org_fact, facts[:3], None).board_published is False
    assert reduce(apply_org_fact, facts, None) == OrgRow("U1", "单位一", "R", True)


@pytest.mark.parametrize("split", range(1, 5))
def test_folding_a_prefix_then_the_rest_gives_the_row_of_the_whole(split):
    facts = org_facts()
    from_prefix = reduce(apply_org_fact, facts[:split], None)
    assert reduce(apply_org_fact, facts[split:], from_prefix) == reduce(
        apply_org_fact, facts, None)


# -- the fold the runner keeps between batches -------------------------------------------

@pytest.mark.parametrize("seed", range(12))
def test_a_fold_fed_batch_by_batch_reports_the_rows_of_all_its_facts_at_once(seed):
    """Applying each update (every row, or the rows that changed) to what was stored gives,
    after every batch, exactly the rows learner_views makes from scratch. A batch with a
    void is refused, and the learner folded anew from all its facts, as the runner does."""
    facts = a_learners_facts(seed)
    rng = random.Random(seed)
    fold = LearnerFold(facts[:1])
    stored = {(row.policy, row.period): row for row in fold.update().balances}
    fewer = 0  # updates that wrote fewer rows than the learner has
    at = 1
    while at < len(facts):
        batch = facts[at:at + rng.randint(1, 4)]
        at += len(batch)
        if not fold.extend(batch):
            assert "record.voided" in {fact.type for fact in batch}
            fold = LearnerFold(facts[:at])
        assert fold.folded == at
        update = fold.update()
        if update.whole:
            stored = {}
        stored |= {(row.policy, row.period): row for row in update.balances}
        from_scratch = learner_views(facts[:at])
        assert update.learner == from_scratch.learner
        assert stored == {(row.policy, row.period): row for row in from_scratch.balances}
        fewer += len(update.balances) < len(from_scratch.balances)
    assert fewer


def test_a_changed_cycle_row_reports_the_board_score_it_replaces():
    fold = LearnerFold([registered(), training(hours=40, at=IN_2022)])
    before = {(row.policy, row.period): row.score_cents for row in fold.update().balances}
    fold.extend([training(hours=8, at=IN_2023)])
    update = fold.update()
    assert not update.whole
    changed = {(row.policy, row.period) for row in update.balances}
    assert ("dadukou-double-100", "2021-2025") in changed
    assert ("dadukou-double-100", "2022") not in changed  # nothing of 2022 moved
    assert update.scores_before == {key: before[key] for key in changed if "-" in key[1]}


def test_a_fold_refuses_a_void_and_folds_nothing_of_its_batch():
    target = training(hours=40, at=IN_2022)
    fold = LearnerFold([registered(), target])
    assert not fold.extend([training(hours=8, at=IN_2023), void(target, at=IN_2023)])
    assert fold.folded == 2
