"""Every role against every endpoint family: allowed, or refused with 401/403 and a reason."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from tests.factories import envelope

POLICY, CYCLE = "dadukou-double-100", "2021-2025"
OK = "ok"
Request = tuple[str, str, dict | None]


def _unique() -> str:
    return uuid.uuid4().hex[:10]


def post_learner_fact(api) -> Request:
    return "POST", "/v1/events", envelope(
        "training.attended", {"program_id": "P", "kind": "thematic", "hours": 8,
                              "leave_hours": 0}, learner_id="L1", source="cela",
        external_id=_unique())


def post_review(api) -> Request:
    declaration = f"D-{_unique()}"
    with api.client("platform") as http:
        submitted = http.post("/v1/events", json=envelope(
            "declaration.submitted", {"declaration_id": declaration,
                                      "activity": "theory_group_study", "hours": 4,
                                      "evidence": "记录"}, learner_id="L1", source="cela"))
        assert submitted.status_code == 201, submitted.text
    return "POST", "/v1/events", envelope(
        "declaration.reviewed", {"declaration_id": declaration, "reviewer_id": "R1",
                                 "decision": "approved", "approved_hours": 4},
        learner_id="L1", source="review-desk")


def post_adjustment(api) -> Request:
    return "POST", "/v1/events", envelope(
        "credits.adjusted", {"category": "basic", "amount": "1", "reason": "补录"},
        learner_id="L1", source="zzb")


def post_org_fact(api) -> Request:
    org = f"A-{_unique()}"
    return "POST", "/v1/events", envelope(
        "org.registered", {"org_id": org, "name": "新单位", "parent_id": "A"},
        learner_id=None, source="zzb")


def read(path: str) -> Callable[[object], Request]:
    return lambda api: ("GET", path, None)


FAMILIES = {
    "post learner fact": post_learner_fact,
    "post review": post_review,
    "post adjustment": post_adjustment,
    "post org fact": post_org_fact,
    "balance": read(f"/v1/learners/L1/balance?policy={POLICY}&period={CYCLE}"),
    "history": read("/v1/learners/L1/history"),
    "verify": read("/v1/learners/L1/verify"),
    "rank": read(f"/v1/boards/{POLICY}/{CYCLE}/learners/L1?org=A"),
    "compliance": read(f"/v1/orgs/A/compliance?policy={POLICY}&period=2023"),
    "statistics": read(f"/v1/orgs/A/statistics?policy={POLICY}&year=2023"),
    "published board": read(f"/v1/boards/{POLICY}/{CYCLE}?org=A"),
    "unpublished board": read(f"/v1/boards/{POLICY}/{CYCLE}?org=B"),
}
ROLES = ["anonymous", "platform", "reviewer", "admin", "auditor", "auditor_B", "revoked"]
EXPECTED = {  # one column per role, in the order of ROLES
    "post learner fact": [401, OK, 403, 403, 403, 403, 401],
    "post review": [401, 403, OK, 403, 403, 403, 401],
    "post adjustment": [401, 403, 403, OK, 403, 403, 401],
    "post org fact": [401, 403, 403, OK, 403, 403, 401],
    "balance": [401, 403, 403, OK, OK, 403, 401],
    "history": [401, 403, 403, OK, OK, 403, 401],
    "verify": [401, 403, 403, OK, OK, 403, 401],
    "rank": [401, 403, 403, OK, OK, 403, 401],
    "compliance": [401, 403, 403, OK, OK, 403, 401],
    "statistics": [401, 403, 403, OK, OK, 403, 401],
    "published board": [OK, OK, OK, OK, OK, 403, 401],
    "unpublished board": [403, 403, 403, 403, 403, OK, 401],
}
CASES = [(family, role, EXPECTED[family][i]) for family in FAMILIES
         for i, role in enumerate(ROLES)]


@pytest.mark.parametrize(("family", "role", "expected"), CASES,
                         ids=[f"{f}-{r}" for f, r, _ in CASES])
def test_role_against_endpoint_family(api, family, role, expected):
    method, path, body = FAMILIES[family](api)
    with api.client(None if role == "anonymous" else role) as http:
        answer = http.request(method, path, json=body)
    if expected == OK:
        assert answer.status_code in (200, 201), answer.text
        return
    assert answer.status_code == expected, answer.text
    error = answer.json()["error"]
    assert error["code"] in ("unauthorized", "forbidden", "out_of_scope")
    assert len(error["message"]) > 10  # a reason, not just a status


def test_a_platform_key_cannot_write_for_a_learner_outside_its_subtree(api):
    fact = envelope("training.attended", {"program_id": "P", "kind": "thematic", "hours": 8,
                                          "leave_hours": 0}, learner_id="L3", source="cela")
    with api.client("platform") as http:
        answer = http.post("/v1/events", json=fact)
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "out_of_scope"


def test_a_platform_key_cannot_transfer_a_learner_out_of_its_subtree(api):
    fact = envelope("learner.transferred", {"org_id": "B"}, learner_id="L2", source="cela")
    with api.client("platform") as http:
        answer = http.post("/v1/events", json=fact)
    assert answer.status_code == 403
    assert answer.json()["error"]["details"][0]["field"] == "payload.org_id"


def test_anonymous_boards_are_masked_and_carry_no_learner_ids(api):
    with api.client() as http:
        public = http.get(f"/v1/boards/{POLICY}/{CYCLE}", params={"org": "A"}).json()
        without_org = http.get(f"/v1/boards/{POLICY}/{CYCLE}")
    with api.client("auditor") as http:
        full = http.get(f"/v1/boards/{POLICY}/{CYCLE}", params={"org": "A"}).json()
    assert without_org.status_code == 403
    assert {e["name"] for e in public["entries"]} == {"张*明", "欧**华"}
    assert all("learner_id" not in e for e in public["entries"])
    assert {e["learner_id"] for e in full["entries"]} == {"L1", "L2"}
    # DESIGN.md's board answer masks names for every reader; the key adds the learner ids.
    assert {e["name"] for e in full["entries"]} == {"张*明", "欧**华"}
