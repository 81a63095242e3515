"""A district that starts from nothing, over HTTP only: the README's walk, as a test."""

from __future__ import annotations

from infra.store.keys import KeyStore
from tests.factories import envelope


def org(org_id: str, parent: str | None, external_id: str) -> dict:
    return envelope("org.registered", {"org_id": org_id, "name": f"单位{org_id}",
                                       "parent_id": parent}, learner_id=None,
                    source="zzb", external_id=external_id)


def test_a_new_district_is_set_up_over_http_in_any_order(api):
    store = KeyStore(api.settings)
    try:
        admin = store.create("admin", "900001")  # the org is not registered yet
        platform = store.create("platform", "900001", "newplat")
    finally:
        store.close()
    import httpx

    def client(key: str) -> httpx.Client:
        return httpx.Client(base_url=api.base_url, timeout=30,
                            headers={"Authorization": f"Bearer {key}"})

    with client(admin) as http:
        # A grandchild before its parent: parked, not refused as out of scope.
        early = http.post("/v1/events", json=org("900001-02-01", "900001-02", "o3"))
        assert early.status_code == 202, early.text
        assert early.json()["waiting_for"] == "org:900001-02"
        root = http.post("/v1/events", json=org("900001", None, "o1"))
        assert root.status_code == 201, root.text
        # A key may register its own org only: not a second root elsewhere.
        foreign = http.post("/v1/events", json=org("900999", None, "o9"))
        assert foreign.status_code == 403, foreign.text
        batch = http.post("/v1/events/batch", json=[
            org("900001-01", "900001", "o2"), org("900001-02", "900001", "o4"),
            envelope("org.board_published", {"org_id": "900001", "published": True},
                     learner_id=None, source="zzb", external_id="pub-1")])
        assert [r["status"] for r in batch.json()["results"]] == ["stored"] * 3
    with client(platform) as http:
        # The learner's facts before the learner, in one batch: order does not matter.
        session = envelope("study_session.recorded", {
            "course_id": "C9", "course_hours": 3.2899999999999996, "required": True,
            "minutes": 1.6666666666666667 * 60, "progress": 1}, learner_id="N1",
            source="newplat", external_id="n1-s1")
        register = envelope("learner.registered", {
            "name": "王五", "org_id": "900001-02-01", "rank": "township_section_and_below",
            "category": "公务员"}, learner_id="N1", source="newplat", external_id="n1-reg",
            at="2024-01-04T09:00:00+08:00")
        answer = http.post("/v1/events/batch?wait=true", json=[session, register])
        assert [r["status"] for r in answer.json()["results"]] == ["stored", "stored"], (
            answer.text)
    with client(admin) as http:
        balance = http.get("/v1/learners/N1/balance",
                           params={"policy": "dadukou-double-100", "period": "2023"})
        assert balance.status_code == 200, balance.text
        assert balance.json()["categories"]["self_study"]["raw"] == "3.29"
        health = http.get("/health").json()
        assert health["parked"] == 0
