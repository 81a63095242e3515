"""Hostile text at the envelope: control characters, invisible characters, and ids that a
URL path or a database would mangle are refused with a field error before anything is
stored. (A NUL byte stored as text wedges PostgreSQL's projection; a learner id holding "/"
could be stored and never read back through /v1/learners/{id}.)
"""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from domain.facts import parse_fact
from infra.files.jsonl_ingest import describe_validation_error
from infra.sample.district import DemoWriter
from tests.factories import REGISTRATION, SESSION, envelope

ID_FIELDS = [
    ("learner.registered", REGISTRATION, "learner_id"),
    ("learner.registered", REGISTRATION, "external_id"),
    ("learner.registered", REGISTRATION, "payload.org_id"),
    ("learner.registered", REGISTRATION, "payload.category"),
    ("learner.transferred", {"org_id": "500104-07"}, "payload.org_id"),
    ("study_session.recorded", SESSION, "payload.course_id"),
    ("training.attended", {"program_id": "P1", "kind": "thematic", "hours": 8,
                           "leave_hours": 0}, "payload.program_id"),
    ("exam.graded", {"exam_id": "E1", "score": 80, "pass_score": 60, "attempt": 1},
     "payload.exam_id"),
    ("assignment.submitted", {"assignment_id": "A1", "kind": "paper", "title": "t"},
     "payload.assignment_id"),
    ("assignment.reviewed", {"assignment_id": "A1", "reviewer_id": "R1",
                             "decision": "accepted", "score": 90}, "payload.reviewer_id"),
    ("declaration.reviewed", {"declaration_id": "D1", "reviewer_id": "R1",
                              "decision": "approved", "approved_hours": 2},
     "payload.declaration_id"),
    ("award.granted", {"award_id": "AW1", "level": "unit", "title": "优秀"}, "payload.award_id"),
    ("org.registered", {"org_id": "500104", "name": "区委组织部", "parent_id": "5001"},
     "payload.org_id"),
    ("org.registered", {"org_id": "500104", "name": "区委组织部", "parent_id": "5001"},
     "payload.parent_id"),
    ("org.board_published", {"org_id": "500104", "published": True}, "payload.org_id"),
]
TEXT_FIELDS = [
    ("learner.registered", REGISTRATION, "payload.name"),
    ("learner.registered", REGISTRATION, "actor"),
    ("assignment.submitted", {"assignment_id": "A1", "kind": "paper", "title": "t"},
     "payload.title"),
    ("declaration.submitted", {"declaration_id": "D1", "activity": "other", "hours": 2,
                               "evidence": "签到表"}, "payload.evidence"),
    ("achievement.recorded", {"kind": "article", "level": "unit", "title": "论文"},
     "payload.title"),
    ("penalty.recorded", {"severity": "minor", "reason": "失误"}, "payload.reason"),
    ("credits.adjusted", {"category": "basic", "amount": 1, "reason": "更正"}, "payload.reason"),
    ("record.voided", {"target_event_id": "6f1c2a8e-5b0d-4c47-9a51-2f8e3c9d7b10",
                       "reason": "代学代考"}, "payload.reason"),
    ("org.registered", {"org_id": "500104", "name": "区委组织部", "parent_id": None},
     "payload.name"),
]


def fact_setting(fact_type: str, payload: dict, path: str, value: str) -> dict:
    org_fact = fact_type.startswith("org.")
    data = envelope(fact_type, dict(payload), learner_id=None if org_fact else "L1")
    if path.startswith("payload."):
        data["payload"][path.removeprefix("payload.")] = value
    else:
        data[path] = value
    return data


def refusal(data: dict) -> tuple[str, str]:
    with pytest.raises(ValidationError) as caught:
        parse_fact(data)
    return describe_validation_error(caught.value)


@pytest.mark.parametrize(("fact_type", "payload", "path"), ID_FIELDS + TEXT_FIELDS)
@pytest.mark.parametrize("hostile",
                         ["L1\x00", "\x00", "a\x1bb", "a\x7fb", "a\rb", "a\x08", "a\x85b"])
def test_control_characters_are_refused_in_every_id_and_text_field(
        fact_type, payload, path, hostile):
    field, reason = refusal(fact_setting(fact_type, payload, path, hostile))
    assert field == path
    assert "U+00" in reason  # names the character without printing it


@pytest.mark.parametrize(("fact_type", "payload", "path"), TEXT_FIELDS)
def test_free_text_may_hold_line_feeds_and_tabs(fact_type, payload, path):
    fact = parse_fact(fact_setting(fact_type, payload, path, "第一行\n\t第二行"))
    container = fact.canonical["payload"] if path.startswith("payload.") else fact.canonical
    assert container[path.removeprefix("payload.")] == "第一行\n\t第二行"


@pytest.mark.parametrize(("fact_type", "payload", "path"), ID_FIELDS)
@pytest.mark.parametrize("hostile", [
    "L/1", "L?1", "L#1", "L%2F1", "L\\1", "L 1", "L\t1", "L\n1", "L\u3000" "1", "L\u00a01",
    "L\u200b1", "L\u202e1", "L\ufeff1", "L\u20281", "L\x851", ".", "..",
])
def test_ids_outside_the_alphabet_are_refused(fact_type, payload, path, hostile):
    field, reason = refusal(fact_setting(fact_type, payload, path, hostile))
    assert field == path
    assert "id may not" in reason


def test_the_source_follows_the_id_alphabet_too():
    for hostile in ("cela/online", "cela online", "cela\x00", "cela:online"):
        assert refusal(envelope("study_session.recorded", SESSION, source=hostile))[0] == (
            "source")


@pytest.mark.parametrize("good", [
    "L000042", "500104-07", "exam-881-att-2", "AW-2021-123", "user@example.org",
    "reviewer:dadukou-oa", "C_0001.v2", "a+b~c!$&'()*,;=[]{}|^`<>\"", "公务员", "课程-甲",
    "Ünïcödé", "...",
])
def test_ids_of_any_script_with_ordinary_punctuation_are_accepted(good):
    fact = parse_fact(envelope("study_session.recorded", SESSION | {"course_id": good},
                               learner_id=good, external_id=good))
    assert (fact.canonical["learner_id"], fact.canonical["payload"]["course_id"]) == (good, good)


def test_every_fact_of_the_demo_district_passes():
    facts = DemoWriter(20210104, 30, 2021, 5).generate()
    for data in facts:
        parse_fact(data)  # raises on the first refusal
    assert len(facts) > 1000
