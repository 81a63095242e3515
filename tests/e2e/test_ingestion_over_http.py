"""POST /v1/events and /v1/events/batch over a real socket, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid

from domain.identity import fact_event_id
from tests.factories import envelope

POLICY = "dadukou-double-100"


def training(learner_id: str = "L1", hours: object = 40, **options: object) -> dict:
    options.setdefault("source", "cela")
    options.setdefault("external_id", f"class-{uuid.uuid4().hex[:10]}")
    return envelope("training.attended", {"program_id": "P", "kind": "thematic",
                                          "hours": hours, "leave_hours": 0},
                    learner_id=learner_id, at="2023-05-01T10:00:00+08:00", **options)


def test_a_fact_is_stored_once_then_answers_duplicate_then_conflict(api):
    fact = training()
    with api.client("platform") as http:
        first = http.post("/v1/events", json=fact)
        again = http.post("/v1/events", json=fact)
        changed = http.post("/v1/events", json=fact | {"payload": fact["payload"] | {
            "hours": 41}})
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["event_id"] == str(fact_event_id("cela", fact["external_id"]))
    assert body["duplicate"] is False and body["position"] > 0
    assert again.status_code == 200
    assert again.json() == body | {"duplicate": True}
    assert changed.status_code == 409
    assert changed.json()["error"]["code"] == "conflict"


def test_invalid_facts_are_422_with_field_paths(api):
    with api.client("platform") as http:
        negative = http.post("/v1/events", json=training(hours=-3))
        unknown_field = http.post("/v1/events", json=training() | {"colour": "red"})
        unknown_type = http.post("/v1/events", json=training() | {"type": "exam.cheated"})
        malformed = http.post("/v1/events", content=b'{"type": "exam.graded",',
                              headers={"content-type": "application/json"})
        unregistered = http.post("/v1/events", json=training(learner_id="L404"))
    assert negative.status_code == 422
    assert [d["field"] for d in negative.json()["error"]["details"]] == ["payload.hours"]
    assert unknown_field.status_code == 422
    assert unknown_field.json()["error"]["details"][0]["field"] == "colour"
    assert unknown_type.json()["error"]["details"][0]["field"] == "type"
    assert malformed.status_code == 422
    assert malformed.json()["error"]["code"] == "invalid_request"
    assert unregistered.status_code == 202  # parked until L404 is registered
    assert unregistered.json()["parked"] is True
    assert unregistered.json()["waiting_for"] == "learner:L404"
    assert unregistered.json()["error"]["code"] == "prerequisite_missing"
    for answer in (negative, unknown_field, unknown_type, malformed, unregistered):
        assert "Traceback" not in answer.text


def test_a_batch_reports_every_item_and_stores_the_valid_ones(api):
    good = [training(), training()]
    facts = [good[0], training(hours=-1), training(learner_id="L3"),
             envelope("record.voided", {"target_event_id": str(uuid.uuid4()), "reason": "x"},
                      learner_id="L1", source="cela"),
             training(source="other-platform"), good[1], good[0]]
    with api.client("platform") as http:
        answer = http.post("/v1/events/batch", json=facts)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [r["status"] for r in body["results"]] == [
        "stored", "invalid", "forbidden", "forbidden", "forbidden", "stored", "duplicate"]
    assert [r["index"] for r in body["results"]] == list(range(7))
    assert (body["stored"], body["duplicate"], body["failed"]) == (2, 1, 4)
    out_of_scope = body["results"][2]["error"]
    assert out_of_scope["code"] == "out_of_scope" and "B" in out_of_scope["message"]
    assert body["results"][6]["position"] == body["results"][0]["position"]
    with api.client("auditor") as http:
        history = http.get("/v1/learners/L1/history", params={"limit": 500}).json()
    recorded = {e["event_id"] for e in history["entries"]}
    assert {r["event_id"] for r in body["results"] if r["status"] == "stored"} <= recorded


def test_batches_over_the_limits_are_refused_whole(api):
    with api.client("platform") as http:
        too_many = http.post("/v1/events/batch", json=[training() for _ in range(1001)])
        too_big = http.post("/v1/events/batch",
                            json=[training() | {"actor": "x" * 1000} for _ in range(300)])
    assert too_many.status_code == 422
    assert too_many.json()["error"]["code"] == "batch_too_large"
    assert too_big.status_code == 413
    assert too_big.json()["error"]["code"] == "body_too_large"


def test_wait_true_answers_after_the_views_have_the_write(api):
    with api.client("auditor") as reader:
        before = reader.get("/v1/learners/L2/balance",
                            params={"policy": POLICY, "period": "2023"}).json()
    with api.client("platform") as http:
        answer = http.post("/v1/events", params={"wait": "true"},
                           json=training("L2", hours=20))
    assert answer.status_code == 201 and answer.json()["projected"] is True
    with api.client("auditor") as reader:
        after = reader.get("/v1/learners/L2/balance",
                           params={"policy": POLICY, "period": "2023"}).json()
        health = reader.get("/health").json()
    raw = float(before["categories"]["basic"]["raw"])
    assert float(after["categories"]["basic"]["raw"]) == raw + 5  # 20 hours / 4
    assert health["projected_position"] >= answer.json()["position"]


def test_a_reviewer_reviews_and_an_admin_voids(api):
    submitted = envelope("assignment.submitted", {"assignment_id": "A-9", "kind": "paper",
                                                  "title": "调研"},
                         learner_id="L1", source="cela")
    review = envelope("assignment.reviewed", {"assignment_id": "A-9", "reviewer_id": "R7",
                                              "decision": "accepted", "score": 90},
                      learner_id="L1", source="review-desk")
    with api.client("platform") as http:
        assert http.post("/v1/events", json=submitted).status_code == 201
    with api.client("reviewer") as http:
        reviewed = http.post("/v1/events", json=review)
    assert reviewed.status_code == 201, reviewed.text
    void = envelope("record.voided", {"target_event_id": reviewed.json()["event_id"],
                                      "reason": "代学代考"}, learner_id="L1", source="zzb")
    with api.client("admin") as http:
        voided = http.post("/v1/events", json=void, params={"wait": "true"})
        again = http.post("/v1/events", json=void | {"external_id": "second-void"})
    assert voided.status_code == 201
    assert again.status_code == 422
    assert again.json()["error"]["code"] == "already_voided"
