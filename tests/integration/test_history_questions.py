"""`studyledger history` answers "as known at" and "as happened by", and says why when empty."""

from __future__ import annotations

import json

from tests.factories import SESSION, envelope
from tests.integration.test_cli import ORG, REG, run, write_lines


def district(tmp_path):
    facts = write_lines(tmp_path / "facts.jsonl", [
        json.dumps(ORG), json.dumps(REG),
        json.dumps(envelope("study_session.recorded", SESSION | {"progress": "1"},
                            at="2023-05-01T10:00:00+08:00", external_id="s-2023")),
        json.dumps(envelope("study_session.recorded", SESSION | {"course_id": "C9",
                            "progress": "1"}, at="2024-12-31T23:30:00+08:00",
                            external_id="s-2024")),
    ])
    assert run(tmp_path, "ingest", str(facts)).returncode == 0


def versions(result) -> list[int]:
    return [entry["version"] for entry in json.loads(result.stdout)["entries"]]


def test_known_at_before_anything_was_recorded_is_empty_and_says_why(tmp_path):
    district(tmp_path)
    # The README's example: every fact was recorded today, so nothing was known in 2025.
    result = run(tmp_path, "history", "L1", "--known-at", "2025-01-01T00:00:00+08:00")
    assert result.returncode == 0
    assert result.stdout == ""
    assert "nothing was recorded by known_at 2025-01-01T00:00:00+08:00" in result.stderr
    assert "happened_by" in result.stderr  # points at the other question


def test_happened_by_a_plain_date_is_midnight_in_shanghai(tmp_path):
    district(tmp_path)
    before = run(tmp_path, "history", "L1", "--happened-by", "2025-01-01", "--json")
    assert before.returncode == 0, before.stderr
    answer = json.loads(before.stdout)
    assert answer["asked"] == {"known_at": None, "happened_by": "2025-01-01T00:00:00+08:00"}
    assert versions(before) == [1, 2, 3]  # 23:30 on 31 December, Beijing time, is in
    assert versions(run(tmp_path, "history", "L1", "--happened-by", "2024-12-31",
                        "--json")) == [1, 2]
    text = run(tmp_path, "history", "L1", "--happened-by", "2024-01-01")
    assert "as happened by 2024-01-01T00:00:00+08:00" in text.stderr
    assert "study_session.recorded" in text.stdout and len(text.stdout.splitlines()) == 2


def test_both_questions_at_once_and_the_old_name(tmp_path):
    district(tmp_path)
    both = run(tmp_path, "history", "L1", "--known-at", "2999-01-01",
               "--happened-by", "2020-01-01", "--json")
    assert json.loads(both.stdout)["entries"] == []
    assert "nothing had happened by happened_by 2020-01-01T00:00:00+08:00" in both.stderr
    old = run(tmp_path, "history", "L1", "--as-of", "2999-01-01", "--json")
    assert json.loads(old.stdout)["asked"]["known_at"] == "2999-01-01T00:00:00+08:00"
    assert versions(old) == [1, 2, 3]


def test_a_time_without_a_zone_is_refused_with_an_example(tmp_path):
    district(tmp_path)
    result = run(tmp_path, "history", "L1", "--happened-by", "2024-01-01T00:00:00")
    assert result.returncode == 2
    assert "needs a time zone" in result.stderr and "2024-06-30" in result.stderr
