"""Reads over HTTP: each answer equals what the application computes; errors are the model."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.factories import envelope

POLICY, CYCLE = "dadukou-double-100", "2021-2025"


def test_balance_over_http_equals_the_calculus_now_and_as_of(api):
    ledger = api.services.ledger
    with api.client("auditor") as http:
        for period in (CYCLE, "2023"):
            answer = http.get("/v1/learners/L1/balance",
                              params={"policy": POLICY, "period": period})
            assert answer.status_code == 200, answer.text
            assert answer.json() == ledger.balance("L1", POLICY, period).model_dump(mode="json")
        as_of = datetime.now(UTC) + timedelta(seconds=1)
        then = http.get("/v1/learners/L1/balance", params={
            "policy": "cadre-regs-2023", "period": "2023", "as_of": as_of.isoformat()})
        expected = ledger.balance("L1", "cadre-regs-2023", "2023", as_of)
        assert then.json() == expected.model_dump(mode="json")
        before = http.get("/v1/learners/L1/balance", params={
            "period": CYCLE, "as_of": "2020-01-01T00:00:00+08:00"})
        naive = http.get("/v1/learners/L1/balance", params={
            "period": CYCLE, "as_of": "2024-01-01T00:00:00"})
    assert before.status_code == 404
    assert before.json()["error"]["code"] == "learner_not_registered"
    assert naive.status_code == 422
    assert naive.json()["error"]["details"][0]["field"] == "query.as_of"


def test_history_pages_with_a_cursor_through_the_whole_trail(api):
    with api.client("platform") as http:
        for hours in (8, 16, 24):
            http.post("/v1/events", json=envelope(
                "training.attended", {"program_id": "P", "kind": "thematic", "hours": hours,
                                      "leave_hours": 0}, learner_id="L2", source="cela"))
    seen, cursor = [], None
    with api.client("auditor") as http:
        while True:
            params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
            page = http.get("/v1/learners/L2/history", params=params).json()
            seen += [e["version"] for e in page["entries"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        whole = http.get("/v1/learners/L2/history", params={"limit": 500}).json()
    assert seen == [e["version"] for e in whole["entries"]] == list(range(1, len(seen) + 1))
    assert len(seen) >= 4
    assert whole["entries"][1]["prev_hash"] == whole["entries"][0]["hash"]


def test_unknown_things_are_404_and_bad_parameters_422(api):
    with api.client("auditor_R") as http:
        no_learner = http.get("/v1/learners/L404/balance", params={"period": CYCLE})
        no_org = http.get("/v1/orgs/NOPE/compliance", params={"period": "2023"})
        bad_policy = http.get("/v1/learners/L1/balance",
                              params={"policy": "nope", "period": CYCLE})
        bad_period = http.get("/v1/learners/L1/balance", params={"period": "20x3"})
        year_board = http.get(f"/v1/boards/{POLICY}/2023", params={"org": "R"})
        bad_cursor = http.get(f"/v1/boards/{POLICY}/{CYCLE}", params={"cursor": "%%%"})
        missing = http.get("/v1/learners/L1/balance")
        no_route = http.get("/v1/nothing-here")
    assert (no_learner.status_code, no_org.status_code) == (404, 404)
    for answer in (bad_policy, bad_period, year_board, bad_cursor, missing):
        assert answer.status_code == 422, answer.text
        assert set(answer.json()["error"]) == {"code", "message", "details"}
    assert missing.json()["error"]["details"][0]["field"] == "query.period"
    assert no_route.status_code == 404 and no_route.json()["error"]["code"] == "not_found"


def test_compliance_statistics_rank_and_verify(api):
    with api.client("auditor_R") as http:
        compliance = http.get("/v1/orgs/R/compliance", params={"period": "2023"}).json()
        statistics = http.get("/v1/orgs/R/statistics", params={"year": 2023}).json()
        rank = http.get(f"/v1/boards/{POLICY}/{CYCLE}/learners/L3").json()
        verify = http.get("/v1/learners/L3/verify").json()
    assert compliance["learners_in_scope"] == 3
    assert {s["learner_id"] for s in compliance["short"]} <= {"L1", "L2", "L3"}
    assert statistics["learners"] == 3
    assert rank["org"] == "R" and rank["of"] == 3 and 1 <= rank["rank"] <= 3
    assert verify == {"learner_id": "L3", "ok": True, "links_verified": 1, "broken": None}


def test_health_reports_positions_and_lag(api):
    with api.client() as http:
        health = http.get("/health").json()
    assert health["status"] == "ok"
    assert health["store"] in ("sqlite", "postgresql")
    assert health["recorded_position"] >= 8
    assert health["projection_lag"] == max(
        0, health["recorded_position"] - health["projected_position"])


def test_every_route_documents_a_response_model_and_an_example(api):
    with api.client() as http:
        spec = http.get("/openapi.json").json()
        docs = http.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    schemas = spec["components"]["schemas"]
    operations = [(path, method, op) for path, item in spec["paths"].items()
                  for method, op in item.items()]
    assert len(operations) >= 10
    for path, method, op in operations:
        success = next(v for k, v in op["responses"].items() if k.startswith("2"))
        content = success["content"]["application/json"]
        ref = content["schema"].get("$ref", "")
        assert ref, f"{method} {path} has no response model"
        model = schemas[ref.rsplit("/", 1)[-1]]
        assert "example" in content or "examples" in model, f"{method} {path}: no example"


# invalid UTF-8, nesting deeper than the parser goes, a number over 4,300 digits
UNPARSEABLE = [b"\xff", b"[" * 100_000, b"1" * 5000]


def test_unparseable_bodies_are_a_documented_400_with_the_error_model(api):
    with api.client() as anonymous:
        spec = anonymous.get("/openapi.json").json()
        answers = [anonymous.post(path, content=body,
                                  headers={"content-type": "application/json"})
                   for path in ("/v1/events", "/v1/events/batch") for body in UNPARSEABLE]
    for answer in answers:
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["code"] == "malformed_body"
        assert set(answer.json()["error"]) == {"code", "message", "details"}
    with_body = [(path, op) for path, item in spec["paths"].items()
                 for op in item.values() if "requestBody" in op]
    assert {path for path, _ in with_body} == {"/v1/events", "/v1/events/batch",
                                               "/v1/learners/{learner_id}/certificates"}
    for path, op in with_body:
        for status in ("400", "413"):
            documented = op["responses"][status]["content"]["application/json"]["schema"]
            assert documented == {"$ref": "#/components/schemas/ErrorBody"}, (path, status)


def test_a_405_names_the_allowed_methods(api):
    with api.client() as http:
        events = http.delete("/v1/events")
        health = http.put("/health")
        board = http.post(f"/v1/boards/{POLICY}/{CYCLE}")
        page = http.post("/boards/dadukou-double-100/2021-2025")
    for answer, allowed in ((events, "POST"), (health, "GET"), (board, "GET"), (page, "GET")):
        assert answer.status_code == 405
        assert answer.headers["allow"] == allowed
    assert events.json()["error"]["code"] == "method_not_allowed"
    assert page.headers["content-type"].startswith("text/html")
