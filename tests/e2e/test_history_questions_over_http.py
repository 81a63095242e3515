"""GET /v1/learners/{id}/history answers "as known at" and "as happened by" on both stores."""

from __future__ import annotations

from tests.e2e.conftest import NOW

HISTORY = "/v1/learners/L1/history"


def types(answer) -> list[str]:
    return [entry["envelope"]["type"] for entry in answer["entries"]]


def test_happened_by_a_plain_date_is_midnight_in_the_packs_time_zone(district):
    with district.client("auditor_R") as http:
        # L1's class ended at 17:00 Beijing time on 1 April 2024.
        day_of = http.get(HISTORY, params={"happened_by": "2024-04-01"}).json()
        day_after = http.get(HISTORY, params={"happened_by": "2024-04-02"}).json()
    assert day_of["asked"] == {"known_at": None, "happened_by": "2024-04-01T00:00:00+08:00"}
    assert types(day_of) == ["learner.registered"]
    assert day_of["note"] is None
    assert types(day_after) == ["learner.registered", "training.attended"]


def test_known_at_before_the_recording_is_empty_and_says_why(district):
    with district.client("auditor_R") as http:
        answer = http.get(HISTORY, params={"known_at": "2025-01-01T00:00:00+08:00"}).json()
        alias = http.get(HISTORY, params={"as_of": "2025-01-01"}).json()
        later = http.get(HISTORY, params={"known_at": (NOW.replace(year=2999)).isoformat()})
    assert answer["entries"] == []
    assert answer["asked"]["known_at"] == answer["as_of"] == "2025-01-01T00:00:00+08:00"
    assert "nothing was recorded by known_at" in answer["note"]
    assert "happened_by" in answer["note"]
    assert alias["entries"] == [] and alias["asked"]["known_at"] == "2025-01-01T00:00:00+08:00"
    assert len(later.json()["entries"]) == 4


def test_both_questions_together_and_bad_times_are_422(district):
    with district.client("auditor_R") as http:
        both = http.get(HISTORY, params={"known_at": "2999-01-01",
                                         "happened_by": "2024-05-15"}).json()
        naive = http.get(HISTORY, params={"happened_by": "2024-01-01T00:00:00"})
        clash = http.get(HISTORY, params={"known_at": "2024-01-01", "as_of": "2025-01-01"})
    assert types(both) == ["learner.registered", "training.attended",
                           "study_session.recorded"]
    assert naive.status_code == 422 and naive.json()["error"]["code"] == "invalid_time"
    assert "needs a time zone" in naive.json()["error"]["message"]
    assert clash.status_code == 422
