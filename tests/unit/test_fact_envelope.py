"""The v1 envelope: what is accepted, what is refused, and the canonical form."""

from uuid import UUID, uuid5

import pytest
from pydantic import ValidationError

from domain.facts import FACT_TYPES, parse_fact
from domain.identity import NS, fact_event_id, learner_archive_id, org_unit_id
from infra.files.jsonl_ingest import describe_validation_error
from tests.factories import SESSION, envelope


def errors_of(data):
    with pytest.raises(ValidationError) as caught:
        parse_fact(data)
    return describe_validation_error(caught.value)


def test_every_event_type_of_the_domain_guide_is_known():
    assert set(FACT_TYPES) == {
        "learner.registered", "learner.transferred", "study_session.recorded",
        "training.attended", "exam.graded", "assignment.submitted", "assignment.reviewed",
        "declaration.submitted", "declaration.reviewed", "achievement.recorded",
        "award.granted", "penalty.recorded", "credits.adjusted", "record.voided",
        "org.registered", "org.board_published",
    }


def test_identities_follow_the_published_namespace():
    assert fact_event_id("cela-online", "exam-881-att-2") == uuid5(NS, "cela-online:exam-881-att-2")
    assert learner_archive_id("L000123") == uuid5(NS, "learner:L000123")
    assert org_unit_id("500104") == uuid5(NS, "org:500104")
    assert UUID("6f1c2a8e-5b0d-4c47-9a51-2f8e3c9d7b10") == NS


def test_same_fact_in_other_spellings_has_the_same_digest():
    a = parse_fact(envelope("study_session.recorded", SESSION | {"course_hours": "2.50"},
                            at="2024-05-02T09:30:00+08:00", external_id="x"))
    b = parse_fact(envelope("study_session.recorded", SESSION | {"course_hours": 2.5},
                            at="2024-05-02T01:30:00Z", external_id="x"))
    assert a.digest == b.digest
    assert a.canonical["occurred_at"] == "2024-05-02T01:30:00Z"
    assert a.canonical["payload"]["course_hours"] == "2.5"


def test_changed_content_changes_the_digest_but_not_the_event_id():
    a = parse_fact(envelope("study_session.recorded", SESSION, external_id="x"))
    b = parse_fact(envelope("study_session.recorded", SESSION | {"minutes": 31},
                            external_id="x"))
    assert (a.event_id, a.digest != b.digest) == (b.event_id, True)


def test_unknown_envelope_field_is_rejected():
    data = envelope("study_session.recorded", SESSION) | {"colour": "red"}
    assert errors_of(data) == ("colour", "colour: Extra inputs are not permitted")


def test_unknown_payload_field_is_rejected():
    assert errors_of(envelope("study_session.recorded", SESSION | {"speed": 16}))[0] == (
        "payload.speed"
    )


def test_unknown_event_type_is_rejected_naming_the_type_field():
    field, reason = errors_of(envelope("exam.cheated", {}))
    assert field == "type" and "exam.cheated" in reason


def test_wrong_field_type_names_the_field():
    data = envelope("exam.graded", {"exam_id": "E", "score": "high", "pass_score": 60,
                                    "attempt": 1})
    assert errors_of(data)[0] == "payload.score"


@pytest.mark.parametrize(
    ("payload_change", "field"),
    [({"minutes": -1}, "payload.minutes"), ({"progress": 1.5}, "payload.progress"),
     ({"progress": -0.1}, "payload.progress"), ({"course_hours": -2}, "payload.course_hours")],
)
def test_out_of_range_numbers_are_rejected(payload_change, field):
    assert errors_of(envelope("study_session.recorded", SESSION | payload_change))[0] == field


def test_negative_training_hours_are_rejected():
    data = envelope("training.attended", {"program_id": "P", "kind": "thematic", "hours": -8,
                                          "leave_hours": 0})
    assert errors_of(data)[0] == "payload.hours"


def test_timestamp_without_zone_is_rejected():
    assert errors_of(envelope("study_session.recorded", SESSION,
                              at="2024-05-02T09:30:00"))[0] == "occurred_at"


def test_learner_fact_without_learner_id_is_rejected():
    assert errors_of(envelope("study_session.recorded", SESSION, learner_id=None))[0] == (
        "learner_id"
    )


def test_org_fact_with_a_learner_id_is_rejected():
    data = envelope("org.registered", {"org_id": "1", "name": "n", "parent_id": None})
    assert errors_of(data)[0] == "learner_id"


def test_source_holding_the_key_separator_is_rejected():
    assert errors_of(envelope("study_session.recorded", SESSION, source="a:b"))[0] == "source"
