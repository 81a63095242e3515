"""Given facts -> when counted under a pack -> then these credit lines and balances.

One test per row of DOMAIN.md's rules tables, each cap, the void, the withdrawn class, the
0.9 progress rule, deductions after caps, and the period edges.
"""

from decimal import Decimal

import pytest

from domain.credits.balance import Period, compute_balance, count_category, parse_period
from domain.credits.lines import credit_lines
from domain.errors import PolicyError
from domain.policy.pack import load_pack
from tests.factories import (
    achievement,
    adjust,
    assignment,
    award,
    declaration,
    exam,
    penalty,
    registered,
    session,
    training,
    void,
)

D100 = load_pack("dadukou-double-100")
REGS = load_pack("cadre-regs-2023")
CYCLE = Period(2021, 2025)


def lines_of(*facts, pack=D100):
    return [(line.category, line.amount, line.year) for line in credit_lines(pack, list(facts))]


def balance(*facts, period="2021-2025", pack=D100):
    return compute_balance(pack, [registered(), *facts], parse_period(pack, period))


def counted(answer, category):
    return answer.categories[category].counted


# -- dadukou-double-100: one test per rules-table row ---------------------------------------


def test_training_earns_a_quarter_credit_per_hour_as_basic():
    assert lines_of(training(hours=40)) == [("basic", Decimal("10.00"), 2023)]


def test_training_with_leave_over_a_seventh_of_its_hours_is_withdrawn():
    assert lines_of(training(hours=70, leave="10.01")) == []


def test_training_with_leave_of_exactly_a_seventh_still_counts():
    assert lines_of(training(hours=70, leave=10)) == [("basic", Decimal("17.50"), 2023)]


def test_course_counts_its_hours_once_at_first_session_reaching_0_9():
    facts = [
        session(progress="0.5", at="2022-12-20T10:00:00+08:00"),
        session(progress="0.89", at="2022-12-28T10:00:00+08:00"),
        session(progress="0.9", at="2023-01-03T10:00:00+08:00"),
        session(progress="1", at="2023-02-01T10:00:00+08:00"),
    ]
    assert lines_of(*facts) == [("self_study", Decimal("2"), 2023)]


def test_course_sessions_below_0_9_earn_nothing():
    assert lines_of(session(progress="0.8999")) == []


def test_course_completion_is_once_per_course_not_per_session():
    assert lines_of(session("C1", "1"), session("C1", "1"), session("C2", "0.95")) == [
        ("self_study", Decimal("2"), 2023),
        ("self_study", Decimal("2"), 2023),
    ]


def test_first_completion_is_by_occurred_at_even_when_recorded_later():
    late_recorded_early_session = session(progress="0.95", at="2022-06-01T10:00:00+08:00")
    facts = [session(progress="1", at="2023-06-01T10:00:00+08:00"), late_recorded_early_session]
    assert lines_of(*facts) == [("self_study", Decimal("2"), 2022)]


def test_exam_earns_one_credit_at_first_passing_attempt_only():
    facts = [exam(score=50, attempt=1), exam(score=70, attempt=2), exam(score=90, attempt=3)]
    assert lines_of(*facts) == [("self_study", Decimal("1"), 2023)]


def test_exam_score_equal_to_pass_score_passes():
    assert lines_of(exam(score=60)) == [("self_study", Decimal("1"), 2023)]


def test_failed_exam_earns_nothing():
    assert lines_of(exam(score=59)) == []


@pytest.mark.parametrize(
    ("kind", "category", "amount"),
    [("reflection", "self_study", "1"), ("research_report", "theory", "2"),
     ("paper", "theory", "2")],
)
def test_accepted_assignment_earns_by_kind(kind, category, amount):
    assert lines_of(*assignment("A1", kind)) == [(category, Decimal(amount), 2023)]


def test_rejected_assignment_earns_nothing():
    assert lines_of(*assignment("A1", "paper", decision="rejected")) == []


def test_approved_declaration_earns_its_approved_hours_as_self_study():
    assert lines_of(*declaration("D1", hours=6, approved=4)) == [
        ("self_study", Decimal("4"), 2023)
    ]


def test_rejected_declaration_earns_nothing():
    assert lines_of(*declaration("D1", hours=6, approved=0, decision="rejected")) == []


@pytest.mark.parametrize(
    ("level", "amount"),
    [("unit", 2), ("district", 4), ("city", 6), ("province", 10), ("national", 20)],
)
def test_achievement_earns_theory_by_level(level, amount):
    assert lines_of(achievement(level)) == [("theory", Decimal(amount), 2023)]


@pytest.mark.parametrize(
    ("level", "amount"),
    [("unit", 5), ("district", 10), ("city", 15), ("province", 25), ("national", 40)],
)
def test_award_earns_performance_by_level(level, amount):
    assert lines_of(award(level)) == [("performance", Decimal(amount), 2023)]


@pytest.mark.parametrize(("severity", "amount"), [("minor", 5), ("major", 20), ("serious", 40)])
def test_penalty_deducts_performance_by_severity(severity, amount):
    assert lines_of(penalty(severity)) == [("performance", Decimal(-amount), 2023)]


def test_adjustment_adds_to_the_named_category():
    assert lines_of(adjust("theory", "-1.5")) == [("theory", Decimal("-1.5"), 2023)]


def test_adjustment_of_another_packs_category_earns_nothing_here():
    assert lines_of(adjust("online_hours", "3")) == []


def test_void_removes_the_target_facts_lines():
    attended = training(hours=40)
    assert lines_of(attended, void(attended)) == []


def test_voided_completion_moves_the_credit_to_the_next_qualifying_session():
    first = session(progress="0.95", at="2022-06-01T10:00:00+08:00")
    second = session(progress="1", at="2023-06-01T10:00:00+08:00")
    assert lines_of(first, second, void(first)) == [("self_study", Decimal("2"), 2023)]


def test_voiding_a_submission_removes_its_reviews_credit():
    submitted, reviewed = assignment("A1", "paper")
    assert lines_of(submitted, reviewed, void(submitted)) == []


# -- counting: caps, excess, deductions after caps ------------------------------------------


def test_self_study_counts_at_most_40_and_shows_the_rest_as_excess():
    answer = balance(*[session(f"C{i}", "1", hours="5") for i in range(9)])  # 45 earned
    assert answer.categories["self_study"].model_dump() == {
        "raw": "45.00", "counted": "40.00", "excess": "5.00"
    }


def test_theory_counts_at_most_20():
    answer = balance(achievement("national"), achievement("unit"))
    assert (counted(answer, "theory"), answer.categories["theory"].excess) == (20, 2)


def test_basic_has_no_cap():
    answer = balance(*[training(hours=400) for _ in range(2)])
    assert (counted(answer, "basic"), answer.categories["basic"].excess) == (200, 0)


def test_performance_caps_awards_at_40_then_subtracts_penalties():
    answer = balance(award("national"), award("city"), penalty("major"))
    perf = answer.categories["performance"]
    assert (perf.raw, perf.counted, perf.excess) == (35, 20, 15)


def test_performance_may_go_below_zero():
    assert counted(balance(penalty("serious")), "performance") == -40


def test_negative_adjustment_of_capped_category_is_subtracted_after_the_cap():
    facts = [*[session(f"C{i}", "1", hours="5") for i in range(10)], adjust("self_study", "-3")]
    sess = balance(*facts).categories["self_study"]
    assert (sess.raw, sess.counted, sess.excess) == (47, 37, 10)


def test_positive_adjustment_counts_toward_the_cap():
    facts = [*[session(f"C{i}", "1", hours="5") for i in range(8)], adjust("self_study", "3")]
    assert balance(*facts).categories["self_study"].excess == 3


def test_count_category_keeps_raw_equal_to_counted_plus_excess():
    result = count_category([Decimal(30), Decimal(25), Decimal(-7)], Decimal(40))
    assert result.raw == result.counted + result.excess == Decimal(48)


def test_comprehensive_total_is_the_three_counted_categories():
    answer = balance(session("C1", "1", hours="10"), achievement("city"), award("unit"))
    assert answer.totals == {"basic": 0, "comprehensive": Decimal(21)}


def test_caps_apply_per_cycle_not_across_cycles():
    facts = [session(f"C{i}", "1", hours="30", at=f"{2021 + i * 5}-05-01T10:00:00+08:00")
             for i in range(2)]
    assert counted(balance(*facts, period="2026-2030"), "self_study") == 30


# -- periods and the annual check -----------------------------------------------------------


def test_half_past_eleven_on_new_years_eve_in_shanghai_is_in_2025():
    assert lines_of(training(hours=4, at="2025-12-31T23:30:00+08:00"))[0][2] == 2025


def test_half_past_four_utc_on_new_years_eve_is_2026_in_shanghai():
    assert lines_of(training(hours=4, at="2025-12-31T16:30:00Z"))[0][2] == 2026


def test_year_period_shows_that_years_lines_alone():
    facts = [training(hours=40, at="2022-05-01T10:00:00+08:00"),
             training(hours=80, at="2023-05-01T10:00:00+08:00")]
    assert counted(balance(*facts, period="2023"), "basic") == 20


def test_cycle_requirements_are_met_at_100_and_100():
    facts = [training(hours=400), session("C1", "1", hours="40"), achievement("national"),
             award("national")]
    answer = balance(*facts)
    assert answer.status == "met"
    assert [(r.name, r.required, r.met) for r in answer.requirements] == [
        ("basic", 100, True), ("comprehensive", 100, True)
    ]


def test_cycle_shortfall_is_reported_per_requirement():
    answer = balance(training(hours=200))
    assert answer.status == "short"
    assert {r.name: r.shortfall for r in answer.requirements} == {
        "basic": Decimal(50), "comprehensive": Decimal(100)
    }


def test_annual_check_is_cumulative_from_the_cycle_start():
    facts = [training(hours=80, at="2021-05-01T10:00:00+08:00"),  # 20 basic in year 1
             training(hours=80, at="2023-05-01T10:00:00+08:00")]  # 20 more in year 3
    answer = balance(*facts, period="2023")
    basic = next(r for r in answer.requirements if r.name == "basic")
    assert (basic.required, basic.actual, basic.shortfall) == (60, 40, 20)


def test_annual_check_caps_the_cumulative_sums():
    facts = [session(f"C{i}", "1", hours="25", at="2021-05-01T10:00:00+08:00") for i in range(2)]
    comprehensive = next(r for r in balance(*facts, period="2022").requirements
                         if r.name == "comprehensive")
    assert comprehensive.actual == 40  # 50 earned, self_study capped at 40


def test_promotion_is_eligible_the_year_after_a_met_annual_check():
    facts = [training(hours=80, at="2021-05-01T10:00:00+08:00"),
             session("C1", "1", hours="20", at="2021-05-01T10:00:00+08:00")]
    promotion = balance(*facts, period="2021").promotion
    assert (promotion.year, promotion.status) == (2022, "eligible")


def test_promotion_requires_make_up_after_a_missed_annual_check():
    promotion = balance(training(hours=40, at="2021-05-01T10:00:00+08:00"),
                        period="2021").promotion
    assert promotion.status == "make_up_required"
    assert promotion.shortfall == {"basic": Decimal(10), "comprehensive": Decimal(20)}


def test_cycle_answer_has_no_promotion():
    assert balance(training()).promotion is None


def test_period_that_is_not_a_cycle_of_the_pack_is_refused():
    with pytest.raises(PolicyError, match="not a cycle"):
        parse_period(D100, "2022-2026")


def test_period_that_is_neither_year_nor_cycle_is_refused():
    with pytest.raises(PolicyError, match="neither"):
        parse_period(D100, "last year")


def test_as_of_keeps_only_facts_recorded_by_then():
    from dataclasses import replace
    from datetime import UTC, datetime

    early = replace(training(hours=40), recorded_at=datetime(2023, 1, 1, tzinfo=UTC))
    late = replace(training(hours=40), recorded_at=datetime(2024, 1, 1, tzinfo=UTC))
    answer = compute_balance(D100, [registered(), early, late], CYCLE,
                             as_of=datetime(2023, 6, 1, tzinfo=UTC))
    assert counted(answer, "basic") == 10


def test_balance_answer_serialises_decimals_as_two_place_strings():
    body = balance(training(hours=42)).model_dump(mode="json")
    assert body["categories"]["basic"] == {"raw": "10.50", "counted": "10.50", "excess": "0.00"}
    assert body["policy"] == {"id": "dadukou-double-100", "version": "2"}


# -- cadre-regs-2023 -----------------------------------------------------------------------


def test_regs_count_class_hours_as_centralized_and_courses_as_online_hours():
    facts = [training(hours=24), training(hours=70, leave=11), session("C1", "0.9", hours="3"),
             *declaration("D1", hours=6, approved=6)]
    assert lines_of(*facts, pack=REGS) == [
        ("centralized_hours", Decimal(24), 2023), ("online_hours", Decimal(3), 2023)
    ]


def test_regs_township_rank_needs_90_class_hours_and_50_online_hours_each_year():
    answer = balance(training(hours=100), session("C1", "1", hours="20"), period="2023",
                     pack=REGS)
    assert {(r.name, r.required, r.met) for r in answer.requirements} == {
        ("centralized_hours", 90, True), ("online_hours", 50, False)
    }
    assert answer.promotion is None


def test_regs_county_rank_needs_550_class_hours_per_cycle_and_online_hours_every_year():
    facts = [registered(rank="county_division_and_above"), training(hours=600)]
    answer = compute_balance(REGS, facts, CYCLE)
    names = [(r.name, r.year, r.met) for r in answer.requirements]
    assert names[0] == ("centralized_hours", None, True)
    assert names[1:] == [("online_hours", year, False) for year in range(2021, 2026)]
