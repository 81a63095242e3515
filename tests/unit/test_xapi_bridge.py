"""The xAPI bridge's shipped mapping on sample statements: which become which learner facts."""

from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError

import domain.xapi
from domain.facts import parse_fact
from domain.identity import fact_event_id
from domain.xapi.bridge import XapiMapping, derive, derive_void, load_mapping, minutes_of

MAPPING = load_mapping(Path(domain.xapi.__file__).parent / "mappings" / "example-cmi5.toml")
ACTOR = {"objectType": "Agent", "account": {"homePage": "https://lms.example/", "name": "L1"}}


def statement(verb: str, activity: str, **extra):
    return {"id": "6f1c2a8e-0000-4c47-9a51-2f8e3c9d7b10", "actor": ACTOR,
            "verb": {"id": f"http://adlnet.gov/expapi/verbs/{verb}"},
            "object": {"id": activity}, "timestamp": "2024-05-01T10:00:00+08:00", **extra}


def test_a_completed_catalog_course_is_a_finished_study_session_with_the_catalog_hours():
    fact = derive(MAPPING, statement("completed", "https://lms.example/course/7",
                                     result={"duration": "PT1H30M"}))
    assert fact["type"] == "study_session.recorded" and fact["learner_id"] == "L1"
    assert fact["payload"] == {"course_id": "C-xapi-7", "course_hours": "2", "required": True,
                               "minutes": "90.00", "progress": "1"}
    assert fact["source"] == "xapi-example-cmi5" and "v1" in fact["actor"]
    parse_fact(fact)  # a valid v1 envelope


def test_a_passed_exam_uses_the_raw_score_or_the_scaled_one():
    raw = derive(MAPPING, statement("passed", "https://lms.example/exam/1",
                                    result={"score": {"raw": 72}}))
    scaled = derive(MAPPING, statement("failed", "https://lms.example/exam/1",
                                       result={"score": {"scaled": 0.5}}))
    assert raw["payload"]["score"] == "72" and Decimal(scaled["payload"]["score"]) == 50
    assert derive(MAPPING, statement("passed", "https://lms.example/exam/1")) is None
    parse_fact(raw)


def test_unmapped_verbs_activities_and_actors_stay_in_the_lrs():
    assert derive(MAPPING, statement("launched", "https://lms.example/course/7")) is None
    assert derive(MAPPING, statement("completed", "https://lms.example/course/99")) is None
    other = statement("completed", "https://lms.example/course/7")
    other["actor"] = {"mbox": "mailto:someone@example.com"}
    assert derive(MAPPING, other) is None


def test_voiding_a_counted_statement_voids_the_fact_it_produced():
    target = statement("attended", "https://lms.example/class/3")
    voiding = {"id": "7a1c2a8e-0000-4c47-9a51-2f8e3c9d7b10", "actor": ACTOR,
               "verb": {"id": "http://adlnet.gov/expapi/verbs/voided"},
               "object": {"objectType": "StatementRef", "id": target["id"]},
               "timestamp": "2024-05-02T10:00:00+08:00"}
    void = derive_void(MAPPING, voiding, target)
    assert void["type"] == "record.voided" and void["learner_id"] == "L1"
    assert void["payload"]["target_event_id"] == str(
        fact_event_id("xapi-example-cmi5", target["id"]))
    parse_fact(void)
    assert derive_void(MAPPING, voiding, None) is None


def test_durations_in_minutes_and_a_mapping_with_unknown_keys_is_refused():
    assert minutes_of("P1DT2H30S") == Decimal("1560.50")
    assert minutes_of(None) == 0
    with pytest.raises(ValidationError):
        XapiMapping.model_validate({"id": "x", "version": "1", "learner": {"by": "account"},
                                    "rule": [{"verbs": ["http://v"], "fact": "exam.graded"}]})
    with pytest.raises(ValidationError):
        XapiMapping.model_validate({"id": "x", "version": "1", "colour": "red",
                                    "learner": {"by": "mbox", "mbox_domain": "x.y"},
                                    "rule": [{"verbs": ["http://v"], "fact": "exam.graded"}]})
