"""Builders for fact envelopes in tests: defaults for everything a test does not care about."""

from __future__ import annotations

import itertools
from typing import Any

from domain.credits.lines import RecordedFact
from domain.facts import IncomingFact, parse_fact

_counter = itertools.count(1)

SESSION = {"course_id": "C1", "course_hours": "2", "required": False, "minutes": 30,
           "progress": "0.5"}
REGISTRATION = {"name": "张三明", "org_id": "500104-07", "rank": "township_section_and_below",
                "category": "公务员"}


def envelope(fact_type: str, payload: dict[str, Any], *, learner_id: str | None = "L1",
             at: str = "2023-05-01T10:00:00+08:00", source: str = "test",
             external_id: str | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "type": fact_type, "source": source,
        "external_id": external_id or f"{fact_type}-{next(_counter)}",
        "occurred_at": at, "actor": f"platform:{source}", "payload": payload,
    }
    if learner_id is not None:
        data["learner_id"] = learner_id
    return data


def incoming(fact_type: str, payload: dict[str, Any], **options: Any) -> IncomingFact:
    return parse_fact(envelope(fact_type, payload, **options))


def recorded(fact_type: str, payload: dict[str, Any], **options: Any) -> RecordedFact:
    fact = incoming(fact_type, payload, **options)
    return RecordedFact(fact.event_id, fact.canonical)


def registered(learner_id: str = "L1", **payload: Any) -> RecordedFact:
    return recorded("learner.registered", REGISTRATION | payload, learner_id=learner_id,
                    at="2021-01-04T09:00:00+08:00")


def session(course_id: str = "C1", progress: str = "0.5", hours: str = "2",
            **options: Any) -> RecordedFact:
    payload = SESSION | {"course_id": course_id, "progress": progress, "course_hours": hours}
    return recorded("study_session.recorded", payload, **options)


def training(hours: Any = 40, leave: Any = 0, **options: Any) -> RecordedFact:
    return recorded("training.attended", {"program_id": "P1", "kind": "thematic",
                                          "hours": hours, "leave_hours": leave}, **options)


def void(target: RecordedFact, **options: Any) -> RecordedFact:
    return recorded("record.voided", {"target_event_id": str(target.event_id),
                                      "reason": "代学代考"}, **options)


def adjust(category: str, amount: str, **options: Any) -> RecordedFact:
    return recorded("credits.adjusted", {"category": category, "amount": amount,
                                         "reason": "更正"}, **options)


def award(level: str = "unit", **options: Any) -> RecordedFact:
    return recorded("award.granted", {"award_id": f"A{next(_counter)}", "level": level,
                                      "title": "优秀"}, **options)


def penalty(severity: str = "minor", **options: Any) -> RecordedFact:
    return recorded("penalty.recorded", {"severity": severity, "reason": "失误"}, **options)


def achievement(level: str = "unit", **options: Any) -> RecordedFact:
    return recorded("achievement.recorded", {"kind": "article", "level": level,
                                             "title": "论文"}, **options)


def exam(exam_id: str = "E1", score: int = 80, attempt: int = 1, **options: Any) -> RecordedFact:
    return recorded("exam.graded", {"exam_id": exam_id, "score": score, "pass_score": 60,
                                    "attempt": attempt}, **options)


def assignment(assignment_id: str, kind: str, decision: str = "accepted",
               **options: Any) -> tuple[RecordedFact, RecordedFact]:
    submitted = recorded("assignment.submitted", {"assignment_id": assignment_id, "kind": kind,
                                                  "title": "心得"}, **options)
    reviewed = recorded("assignment.reviewed", {"assignment_id": assignment_id,
                                                "reviewer_id": "R1", "decision": decision,
                                                "score": 90}, **options)
    return submitted, reviewed


def declaration(declaration_id: str, hours: Any, approved: Any, decision: str = "approved",
                **options: Any) -> tuple[RecordedFact, RecordedFact]:
    submitted = recorded("declaration.submitted", {"declaration_id": declaration_id,
                                                   "activity": "theory_group_study",
                                                   "hours": hours, "evidence": "签到表"},
                         **options)
    reviewed = recorded("declaration.reviewed", {"declaration_id": declaration_id,
                                                 "reviewer_id": "R1", "decision": decision,
                                                 "approved_hours": approved}, **options)
    return submitted, reviewed
