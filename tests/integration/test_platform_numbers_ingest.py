"""A JSONL file with numbers as platforms compute them, ingested through the application into a
real SQLite file: every number is stored exactly as sent, the chain verifies when read back
from disk, a resend in other spellings is a duplicate, and the balance rounds as the pack
says."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from infra.bootstrap import build_ledger
from infra.files.jsonl_ingest import ingest_file
from tests.conftest import sqlite_settings
from tests.factories import REGISTRATION, envelope

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
IN_2024 = "2024-05-01T10:00:00+08:00"


def line(fact_type: str, external_id: str, payload_json: str, *, learner: bool = True,
         at: str = IN_2024) -> str:
    """A fact line whose payload is written as raw JSON text, so numbers keep the spelling a
    platform's serializer gives them (json.dumps would respell them)."""
    data = envelope(fact_type, {}, external_id=external_id, at=at,
                    learner_id="L1" if learner else None)
    return json.dumps(data, ensure_ascii=False).replace('"payload": {}',
                                                        f'"payload": {payload_json}')


def platform_file(path: Path, *, hours_spelling: str = "8") -> Path:
    lines = [
        line("org.registered", "org", json.dumps(
            {"org_id": "500104-07", "name": "单位", "parent_id": None}), learner=False,
            at="2021-01-01T09:00:00+08:00"),
        line("learner.registered", "reg", json.dumps(REGISTRATION, ensure_ascii=False),
             at="2024-03-01T09:00:00+08:00"),
        line("training.attended", "t-100min", '{"program_id": "P1", "kind": "thematic", '
             '"hours": 1.6666666666666667, "leave_hours": 0}'),
        line("training.attended", "t-31h", '{"program_id": "P2", "kind": "thematic", '
             '"hours": 31, "leave_hours": 4.428571428571429}'),
        line("training.attended", "t-8h", '{"program_id": "P3", "kind": "thematic", '
             f'"hours": {hours_spelling}, "leave_hours": 0}}'),
        line("study_session.recorded", "s-noise", '{"course_id": "C1", "course_hours": '
             '3.2899999999999996, "required": true, "minutes": 100.00000000000001, '
             '"progress": 0.8999999999999999}'),
        line("study_session.recorded", "s-third", '{"course_id": "C2", "course_hours": 2, '
             '"required": false, "minutes": 20, "progress": 0.3333333333333333}'),
        line("exam.graded", "e-long", '{"exam_id": "E1", "score": 0.12345678901234567890123, '
             '"pass_score": 60, "attempt": 1}'),
        line("training.attended", "bad-tiny", '{"program_id": "P4", "kind": "thematic", '
             '"hours": 1e-100000, "leave_hours": 0}'),
        line("training.attended", "bad-huge", '{"program_id": "P5", "kind": "thematic", '
             '"hours": 10000.5, "leave_hours": 0}'),
        line("award.granted", "bad-nul", '{"award_id": "A1", "level": "unit", '
             '"title": "优秀\\u0000"}'),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_platform_numbers_are_stored_exactly_and_verify(tmp_path):
    settings = sqlite_settings(tmp_path)
    ledger = build_ledger(settings)
    try:
        report = ingest_file(ledger, platform_file(tmp_path / "facts.jsonl"), clock=lambda: NOW,
                             show_progress=False)
        assert (report.stored, report.duplicate, report.rejected) == (8, 0, 3)
        rejected = [json.loads(text) for text in
                    report.rejections_path.read_text("utf-8").splitlines()]
        assert [(r["line"], r["field"]) for r in rejected] == [
            (9, "payload.hours"), (10, "payload.hours"), (11, "payload.title")]

        again = ingest_file(ledger, platform_file(tmp_path / "again.jsonl",
                                                  hours_spelling='"8.00"'),
                            clock=lambda: NOW, show_progress=False)
        assert (again.stored, again.duplicate) == (0, 8)  # 8 and "8.00" are the same content
    finally:
        ledger.close()

    reopened = build_ledger(settings)  # read back from the file, not from a cache
    try:
        payloads = {f.fact["external_id"]: f.payload for f in reopened.facts_of("L1")}
        assert payloads["t-100min"]["hours"] == "1.6666666666666667"
        assert payloads["t-31h"]["leave_hours"] == "4.428571428571429"
        assert payloads["t-8h"]["hours"] == "8"
        assert payloads["s-noise"] == {
            "course_id": "C1", "course_hours": "3.2899999999999996", "required": True,
            "minutes": "100.00000000000001", "progress": "0.8999999999999999"}
        assert payloads["s-third"]["progress"] == "0.3333333333333333"
        assert payloads["e-long"]["score"] == "0.12345678901234567890123"

        chain = reopened.verify_learner("L1")
        assert (chain.broken, chain.links_checked) == (None, 7)

        body = reopened.balance("L1", "dadukou-double-100", "2024").model_dump(mode="json")
        # basic: 0.42 (100 min) + 7.75 (31 h, leave exactly a seventh) + 2 (8 h)
        assert body["categories"]["basic"]["raw"] == "10.17"
        # self_study: 3.29 (course at progress 0.8999999999999999); the exam failed
        assert body["categories"]["self_study"]["raw"] == "3.29"
        assert body["proration"] == {"from_year": 2024, "years_counted": 1, "cycle_years": 5}
        assert [(r["name"], r["required"]) for r in body["requirements"]] == [
            ("basic", "20.00"), ("comprehensive", "20.00")]
    finally:
        reopened.close()
