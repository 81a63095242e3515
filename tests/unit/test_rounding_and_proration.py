"""The packs' rounding rule for platform numbers, and requirements prorated from the year of
registration (each written in the packs' `decisions`)."""

from __future__ import annotations

import json
from decimal import Decimal
from importlib import resources

import pytest

from domain.credits.balance import Period, compute_balance, parse_period
from domain.credits.lines import credit_lines
from domain.errors import PolicyError
from domain.policy.pack import load_pack, parse_pack
from projections.certificate import certificate
from projections.learner_views import learner_views
from tests.factories import (
    REGISTRATION,
    adjust,
    exam,
    recorded,
    registered,
    session,
    training,
)

D100 = load_pack("dadukou-double-100")
REGS = load_pack("cadre-regs-2023")
CYCLE = Period(2021, 2025)
IN_2024 = "2024-05-01T10:00:00+08:00"


def lines_of(*facts, pack=D100):
    return [(line.category, line.amount) for line in credit_lines(pack, list(facts))]


def requirement(answer, name, year=None):
    return next(r for r in answer.requirements if r.name == name and r.year == year)


# -- rounding ---------------------------------------------------------------------------------


def test_packs_state_their_rounding_and_proration_in_decisions():
    for pack in (D100, REGS):
        assert (pack.rounding.line_places, pack.rounding.compare_places) == (2, 6)
        assert pack.prorate_from_registration
        text = " ".join(pack.decisions)
        assert "rounded half-up to 0.01" in text
        assert "6 decimal places" in text
        assert "prorated from the year of registration" in text


def test_a_class_of_100_minutes_in_hours_earns_basic_0_42():
    assert lines_of(training(hours=100 / 60)) == [("basic", Decimal("0.42"))]


def test_the_same_class_counts_1_67_hours_under_the_hours_pack():
    assert lines_of(training(hours=100 / 60), pack=REGS) == [
        ("centralized_hours", Decimal("1.67"))]


def test_rounded_lines_sum_exactly():
    facts = [training(hours=100 / 60) for _ in range(3)]
    answer = compute_balance(D100, [registered(), *facts], CYCLE)
    assert answer.categories["basic"].raw == Decimal("1.26")  # 3 x 0.42, not 1.25
    assert answer.model_dump(mode="json")["totals"]["basic"] == "1.26"


def test_halves_round_up_away_from_zero():
    assert lines_of(training(hours="4.02")) == [("basic", Decimal("1.01"))]  # 1.005
    assert lines_of(adjust("basic", "1.005"), adjust("basic", "-1.665")) == [
        ("basic", Decimal("1.01")), ("basic", Decimal("-1.67"))]


def test_a_line_rounding_to_zero_is_no_line():
    assert lines_of(training(hours="0.01")) == []  # 0.0025 basic


def test_course_hours_are_rounded_when_counted():
    assert lines_of(session(progress="1", hours=str(100 / 60))) == [
        ("self_study", Decimal("1.67"))]


def test_leave_of_exactly_a_seventh_computed_in_floating_point_is_not_withdrawal():
    assert 31 / 7 == 4.428571428571429  # what a JavaScript platform sends
    assert lines_of(training(hours=31, leave=31 / 7)) == [("basic", Decimal("7.75"))]
    assert lines_of(training(hours=31, leave=31 / 7), pack=REGS) == [
        ("centralized_hours", Decimal("31"))]


def test_leave_over_a_seventh_at_the_sixth_decimal_place_is_withdrawal():
    assert lines_of(training(hours=31, leave="4.4285725")) == []  # 4.428573 > 4.428571
    assert lines_of(training(hours=31, leave="4.4285714")) == [("basic", Decimal("7.75"))]


def test_progress_noise_below_the_threshold_still_reaches_it():
    assert 0.3 * 3 == 0.8999999999999999
    assert lines_of(session(progress=str(0.3 * 3))) == [("self_study", Decimal("2"))]


def test_progress_short_of_the_threshold_at_six_places_does_not_reach_it():
    assert lines_of(session(progress="0.8999994")) == []


def test_a_score_noise_below_the_pass_score_passes():
    assert lines_of(exam("E1", score=59.99999999999999)) == [("self_study", Decimal("1"))]
    assert lines_of(exam("E1", score="59.9999")) == []  # pass_score 60


@pytest.mark.parametrize(("old", "new", "message"), [
    ("line_places = 2", "line_places = 3", "line_places"),
    ("compare_places = 6", "compare_places = 13", "compare_places"),
    ('self_study = { cap = "40" }', 'self_study = { cap = "40.005" }', "categories.self_study.cap"),
    ('minimum = "100"', 'minimum = "100.001"', "requirements.basic.minimum"),
    ('credit = "1"', 'credit = "0.125"', "rules.exam_passed.credit"),
    ('progress_threshold = "0.9"', 'progress_threshold = "0.9000001"', "progress_threshold"),
    ("[rounding]\nline_places = 2\ncompare_places = 6\n", "", "rounding"),
])
def test_a_pack_whose_rounding_does_not_hold_is_refused_on_load(old, new, message):
    text = resources.files("domain.policy").joinpath("packs/dadukou-double-100.toml").read_text(
        "utf-8")
    assert old in text
    with pytest.raises(PolicyError, match=message):
        parse_pack(text.replace(old, new, 1), "test.toml")


# -- proration from the year of registration ------------------------------------------------


def registered_at(at: str, **payload) -> object:
    return recorded("learner.registered", REGISTRATION | payload, at=at)


def credits_2024() -> list:
    """20 basic and 20 comprehensive credits, all in 2024."""
    return [training(hours=80, at=IN_2024), session("C1", "1", hours="20", at=IN_2024)]


def balance_of(facts, period, pack=D100):
    return compute_balance(pack, facts, parse_period(pack, period))


def test_a_cadre_registered_in_2024_is_asked_for_two_fifths_of_the_cycle():
    facts = [registered_at("2024-03-01T09:00:00+08:00"), *credits_2024()]
    answer = balance_of(facts, "2021-2025")
    assert [(r.name, r.required, r.actual, r.shortfall) for r in answer.requirements] == [
        ("basic", 40, 20, 20), ("comprehensive", 40, 20, 20)]
    assert answer.model_dump(mode="json")["proration"] == {
        "from_year": 2024, "years_counted": 2, "cycle_years": 5}


def test_a_cadre_registered_in_2024_with_2024_credits_passes_the_2024_check():
    answer = balance_of([registered_at("2024-03-01T09:00:00+08:00"), *credits_2024()], "2024")
    assert [(r.name, r.required, r.met) for r in answer.requirements] == [
        ("basic", 20, True), ("comprehensive", 20, True)]
    assert (answer.status, answer.promotion.year, answer.promotion.status) == (
        "met", 2025, "eligible")
    assert answer.proration.model_dump() == {
        "from_year": 2024, "years_counted": 1, "cycle_years": 5}


def test_a_cadre_registered_in_2024_is_not_held_back_on_day_one():
    answer = balance_of([registered_at("2024-03-01T09:00:00+08:00")], "2023")
    assert [(r.name, r.required, r.met) for r in answer.requirements] == [
        ("basic", 0, True), ("comprehensive", 0, True)]
    assert (answer.promotion.year, answer.promotion.status) == (2024, "eligible")
    assert answer.proration.years_counted == 0


def test_the_registration_year_is_taken_in_the_pack_time_zone():
    # 2023-12-31T17:00Z is already 2024-01-01 01:00 in Asia/Shanghai.
    answer = balance_of([registered_at("2023-12-31T17:00:00Z")], "2021-2025")
    assert answer.proration.from_year == 2024


def test_the_hours_pack_prorates_the_cycle_floor_and_skips_years_before_registration():
    facts = [registered_at("2024-03-01T09:00:00+08:00", rank="county_division_and_above"),
             training(hours=300, at=IN_2024)]
    answer = balance_of(facts, "2021-2025", REGS)
    assert [(r.name, r.year, r.required) for r in answer.requirements] == [
        ("centralized_hours", None, 220),  # 550 x 2 / 5
        ("online_hours", 2024, 50), ("online_hours", 2025, 50)]
    before = balance_of(facts, "2023", REGS)
    assert (before.requirements, before.status) == ([], "met")


def test_a_cycle_ended_before_registration_asks_nothing():
    answer = balance_of([registered_at("2026-02-01T09:00:00+08:00")], "2021-2025")
    assert [r.required for r in answer.requirements] == [0, 0]
    assert answer.proration.model_dump() == {
        "from_year": 2026, "years_counted": 0, "cycle_years": 5}


def test_a_prorated_requirement_that_is_not_whole_is_rounded_like_a_line():
    three_year = D100.model_copy(update={"cycle_years": 3})
    answer = balance_of([registered_at("2022-03-01T09:00:00+08:00")], "2021-2023", three_year)
    assert requirement(answer, "basic").required == Decimal("66.67")  # 100 x 2 / 3


def test_with_proration_off_a_late_cadre_gets_the_old_answer():
    unprorated = D100.model_copy(update={"prorate_from_registration": False})
    facts = [registered_at("2024-03-01T09:00:00+08:00"), *credits_2024()]
    cycle = balance_of(facts, "2021-2025", unprorated)
    assert [(r.name, r.required) for r in cycle.requirements] == [
        ("basic", 100), ("comprehensive", 100)]
    assert cycle.proration is None
    year = balance_of(facts, "2024", unprorated)
    assert [r.required for r in year.requirements] == [80, 80]
    assert balance_of(facts, "2023", unprorated).promotion.status == "make_up_required"


def test_a_cadre_registered_before_the_cycle_is_unchanged():
    for at in ("2021-01-04T09:00:00+08:00", "2019-06-01T09:00:00+08:00"):
        facts = [registered_at(at), *credits_2024()]
        cycle = balance_of(facts, "2021-2025")
        assert [r.required for r in cycle.requirements] == [100, 100]
        assert cycle.proration is None
        year = balance_of(facts, "2024")
        assert [r.required for r in year.requirements] == [80, 80]
        assert year.promotion.status == "make_up_required"
        assert year.model_dump(mode="json")["proration"] is None


def test_the_read_views_and_the_certificate_of_a_late_cadre_render():
    facts = [registered_at("2024-03-01T09:00:00+08:00"), *credits_2024(),
             training(hours=100 / 60, at=IN_2024)]
    views = learner_views(facts)
    rows = {(row.policy, row.period): row for row in views.balances}
    cycle = rows[("dadukou-double-100", "2021-2025")]
    assert json.loads(cycle.body)["proration"] == {
        "from_year": 2024, "years_counted": 2, "cycle_years": 5}
    assert cycle.score_cents == 4042  # 20 + 0.42 basic, 20 comprehensive
    assert rows[("dadukou-double-100", "2023")].status == "met"
    hours = certificate(REGS, facts, "2024")
    assert hours.centralized_hours == Decimal("81.67")

