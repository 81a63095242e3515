"""The study-hour certificate: what counts, the totals, and a digest bound to the content."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from domain.errors import PolicyError
from domain.policy.pack import load_pack
from projections.certificate import certificate, check_period_started
from tests.factories import SESSION, recorded, registered, session, training, void

HOURS = load_pack("cadre-regs-2023")


def facts_2024():
    return [registered(),
            training(40, at="2024-04-01T17:00:00+08:00"),
            training(14, leave=3, at="2024-04-09T17:00:00+08:00"),  # withdrawn: 3 > 14/7
            recorded("study_session.recorded", SESSION | {
                "course_id": "C1", "progress": "1", "course_hours": "6", "required": True},
                at="2024-05-01T10:00:00+08:00"),
            session("C2", progress="0.5", at="2024-06-01T10:00:00+08:00"),  # not completed
            training(8, at="2025-01-01T00:30:00+08:00")]  # the next year in Beijing time


def test_counts_classes_and_completed_courses_of_the_period_only():
    cert = certificate(HOURS, facts_2024(), "2024")
    assert [(i.kind, i.hours) for i in cert.items] == [("class", Decimal(40)),
                                                      ("course", Decimal(6))]
    assert (cert.centralized_hours, cert.online_hours) == (Decimal(40), Decimal(6))
    assert (cert.required_course_hours, cert.total_hours) == (Decimal(6), Decimal(46))
    assert certificate(HOURS, facts_2024(), "2021-2025").total_hours == Decimal(54)


def test_the_digest_is_stable_and_a_void_changes_it():
    facts = facts_2024()
    digest = certificate(HOURS, facts, "2024").digest
    assert certificate(HOURS, list(facts), "2024").digest == digest
    voided = certificate(HOURS, [*facts, void(facts[1])], "2024")
    assert voided.digest != digest and voided.total_hours == Decimal(6)


def test_credit_packs_and_periods_not_started_are_refused():
    with pytest.raises(PolicyError, match="hours"):
        certificate(load_pack("dadukou-double-100"), facts_2024(), "2024")
    with pytest.raises(PolicyError, match="not started"):
        check_period_started(HOURS, "2030", date(2026, 11, 22))
    with pytest.raises(PolicyError, match="not started"):
        check_period_started(HOURS, "2031-2035", date(2026, 11, 22))
    check_period_started(HOURS, "2026", date(2026, 1, 1))
    check_period_started(HOURS, "2026-2030", date(2026, 1, 1))
