"""Numbers as platforms send them: accepted as sent, stored exactly, refused only when absurd.

JavaScript computes 100 minutes / 60 as 1.6666666666666667 and 31 / 7 as 4.428571428571429,
and sums leave noise such as 3.2899999999999996. The envelope takes every such number and
keeps it to the last digit; rounding is the policy pack's business (tests in
test_rounding_and_proration.py).
"""

from __future__ import annotations

import json
import time
from decimal import Decimal

import pytest
from pydantic import ValidationError

from consumers.ingest_loop import DeadLetter, InboundMessage, validate_message
from domain.facts import IncomingFact, decode_fact_json, parse_fact
from infra.files.jsonl_ingest import Rejection, describe_validation_error, parse_line
from tests.factories import SESSION, envelope

TRAINING = {"program_id": "P1", "kind": "thematic", "hours": 31, "leave_hours": 0}
EXAM = {"exam_id": "E1", "score": 80, "pass_score": 60, "attempt": 1}
ADJUSTMENT = {"category": "basic", "amount": 2, "reason": "更正"}
DECLARATION = {"declaration_id": "D1", "activity": "other", "hours": 2, "evidence": ""}
REVIEW = {"declaration_id": "D1", "reviewer_id": "R1", "decision": "approved",
          "approved_hours": 2}
BASES = {"training.attended": TRAINING, "exam.graded": EXAM, "credits.adjusted": ADJUSTMENT,
         "study_session.recorded": SESSION, "declaration.submitted": DECLARATION,
         "declaration.reviewed": REVIEW}


def fact_with(fact_type: str, field: str, value: object, external_id: str = "x") -> dict:
    return envelope(fact_type, BASES[fact_type] | {field: value}, external_id=external_id)


def refusal(data: dict) -> tuple[str, str]:
    with pytest.raises(ValidationError) as caught:
        parse_fact(data)
    return describe_validation_error(caught.value)


@pytest.mark.parametrize(("fact_type", "field", "sent", "stored"), [
    ("training.attended", "leave_hours", 1.6666666666666667, "1.6666666666666667"),
    ("training.attended", "leave_hours", 4.428571428571429, "4.428571428571429"),
    ("training.attended", "hours", 3.2899999999999996, "3.2899999999999996"),
    ("training.attended", "hours", 0.30000000000000004, "0.30000000000000004"),
    ("study_session.recorded", "progress", 0.3333333333333333, "0.3333333333333333"),
    ("study_session.recorded", "progress", 0.8999999999999999, "0.8999999999999999"),
    ("study_session.recorded", "progress", 1, "1"),
    ("study_session.recorded", "minutes", 100.00000000000001, "100.00000000000001"),
    ("study_session.recorded", "course_hours", 1e-7, "0.0000001"),
    ("study_session.recorded", "course_hours", 5.551115123125783e-17,
     "0.00000000000000005551115123125783"),
    ("exam.graded", "score", 59.99999999999999, "59.99999999999999"),
    ("exam.graded", "pass_score", "60.000", "60"),
    ("credits.adjusted", "amount", -1.6666666666666667, "-1.6666666666666667"),
    ("credits.adjusted", "amount", "-0.00", "0"),
    ("declaration.submitted", "hours", "2.125", "2.125"),
    ("declaration.reviewed", "approved_hours", 10_000, "10000"),
    # More digits than a double holds, as JSONL and Kafka decode them (exact Decimals):
    ("training.attended", "hours", Decimal("0.12345678901234567890123"),
     "0.12345678901234567890123"),
    ("study_session.recorded", "course_hours", Decimal("1E+2"), "100"),
])
def test_platform_numbers_are_accepted_and_stored_exactly(fact_type, field, sent, stored):
    fact = parse_fact(fact_with(fact_type, field, sent))
    assert fact.canonical["payload"][field] == stored
    assert f'"{field}":"{stored}"' in fact.canonical_text  # what is hashed and stored


@pytest.mark.parametrize(("fact_type", "field", "sent", "message"), [
    ("training.attended", "hours", float("nan"), "finite number"),
    ("training.attended", "hours", float("inf"), "finite number"),
    ("training.attended", "hours", "Infinity", "finite number"),
    ("training.attended", "hours", "NaN", "finite number"),
    ("training.attended", "hours", -0.5, "greater than or equal to 0"),
    ("training.attended", "leave_hours", -1e-9, "greater than or equal to 0"),
    ("training.attended", "hours", 10_000.01, "less than or equal to 10000"),
    ("declaration.submitted", "hours", 1e6, "less than or equal to 10000"),
    ("study_session.recorded", "minutes", 600_001, "less than or equal to 600000"),
    ("study_session.recorded", "progress", 1.0000000000000002, "less than or equal to 1"),
    ("study_session.recorded", "progress", -0.1, "greater than or equal to 0"),
    ("exam.graded", "score", 10_001, "less than or equal to 10000"),
    ("exam.graded", "pass_score", -1, "greater than or equal to 0"),
    ("credits.adjusted", "amount", -10_000.5, "greater than or equal to -10000"),
    ("credits.adjusted", "amount", 1e300, "less than or equal to 10000"),
    ("training.attended", "hours", "1e-100000", "decimal place 40"),
    ("training.attended", "hours", "1e-41", "decimal place 40"),
    ("training.attended", "hours", Decimal("1e100000"), "less than or equal to 10000"),
    ("training.attended", "hours", "1.0000000000000000000000000001", "28 significant digits"),
    ("training.attended", "hours", True, "Decimal input should be"),
    ("training.attended", "hours", "8 hours", "valid decimal"),
])
def test_absurd_numbers_are_refused_naming_the_field(fact_type, field, sent, message):
    path, reason = refusal(fact_with(fact_type, field, sent))
    assert path == f"payload.{field}"
    assert message in reason


def test_a_huge_exponent_is_refused_at_once_not_printed():
    started = time.perf_counter()
    for spelling in ("1e-100000", "1e-999999999", "9" * 100_000 + "e-100010"):
        assert refusal(fact_with("training.attended", "hours", spelling))[0] == "payload.hours"
    assert time.perf_counter() - started < 1


def test_28_significant_digits_are_kept_to_the_last_one():
    sent = "1234.567890123456789012345678"
    fact = parse_fact(fact_with("training.attended", "hours", sent))
    assert fact.canonical["payload"]["hours"] == sent


@pytest.mark.parametrize("spelling", [8, 8.0, "8", "8.00", "8e0", Decimal("8.000"),
                                      Decimal("0.8E+1")])
def test_numerically_equal_spellings_are_the_same_content(spelling):
    first = parse_fact(fact_with("training.attended", "hours", 8))
    again = parse_fact(fact_with("training.attended", "hours", spelling))
    assert (again.event_id, again.digest) == (first.event_id, first.digest)


def test_a_numerically_different_value_is_other_content():
    noisy = parse_fact(fact_with("training.attended", "hours", 3.2899999999999996))
    tidy = parse_fact(fact_with("training.attended", "hours", 3.29))
    assert noisy.event_id == tidy.event_id and noisy.digest != tidy.digest


# -- decoding JSON text (JSONL and Kafka) -------------------------------------------------


def line_of(fact_type: str, payload_json: str) -> str:
    data = envelope(fact_type, {}, external_id="x")
    return json.dumps(data, ensure_ascii=False).replace('"payload": {}',
                                                        f'"payload": {payload_json}')


HOURS_LINE = line_of("training.attended", '{"program_id": "P1", "kind": "thematic", '
                     '"hours": 0.12345678901234567890123, "leave_hours": 1.6666666666666667}')


def test_json_fractions_decode_to_exact_decimals():
    assert decode_fact_json('{"a": 0.12345678901234567890123, "b": 8}') == {
        "a": Decimal("0.12345678901234567890123"), "b": 8}


def test_a_jsonl_line_keeps_more_digits_than_a_double_holds():
    fact = parse_line(1, HOURS_LINE)
    assert isinstance(fact, IncomingFact)
    assert fact.canonical["payload"]["hours"] == "0.12345678901234567890123"
    assert fact.canonical["payload"]["leave_hours"] == "1.6666666666666667"


def test_a_kafka_message_keeps_more_digits_than_a_double_holds():
    fact = validate_message(InboundMessage("studyledger.events", 0, 7, b"L1", HOURS_LINE.encode()))
    assert isinstance(fact, IncomingFact)
    assert fact.canonical["payload"]["hours"] == "0.12345678901234567890123"


def test_an_integer_too_long_for_python_is_a_field_error_not_a_crash():
    huge = line_of("training.attended", '{"program_id": "P1", "kind": "thematic", '
                   f'"hours": {"9" * 5000}, "leave_hours": 0}}')
    rejection = parse_line(1, huge)
    assert isinstance(rejection, Rejection)
    assert (rejection.code, rejection.field) == ("invalid_fact", "payload.hours")
    letter = validate_message(InboundMessage("studyledger.events", 0, 7, b"L1", huge.encode()))
    assert isinstance(letter, DeadLetter) and letter.code == "invalid_fact"
