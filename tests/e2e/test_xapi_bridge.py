"""The xAPI bridge end to end: a real xAPI client (Rustici's TinCanPython) posts statements to
/xapi, the shipped mapping turns them into learner facts, the learner's balance changes, and
voiding the statement voids the credit."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from tincan import (
    Activity,
    Agent,
    AgentAccount,
    RemoteLRS,
    Result,
    Statement,
    StatementRef,
    Verb,
)

import domain.xapi
from infra.bootstrap import build_services
from infra.settings import Settings
from infra.store.keys import KeyStore
from tests.e2e.conftest import NOW, district_facts, serving

MAPPING = Path(domain.xapi.__file__).parent / "mappings" / "example-cmi5.toml"
PERIOD = "2021-2025"


@pytest.fixture(scope="module")
def bridged(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("xapi-bridge") / "ledger.db"
    settings = Settings(database_url=f"sqlite:///{path}", xapi_mapping=str(MAPPING))
    services = build_services(settings)
    services.ledger.record_facts(district_facts(), now=NOW, channel="test")
    keys = KeyStore(settings)
    user, password = keys.create("lrs", "A", basic=True).split(":", 1)
    auditor = keys.create("auditor", "A")
    keys.close()
    with serving(settings, services, poll_seconds=0.05) as base_url:
        lrs = RemoteLRS(endpoint=f"{base_url}/xapi/", username=user, password=password)
        yield lrs, httpx.Client(base_url=base_url, timeout=30,
                                headers={"Authorization": f"Bearer {auditor}"})


def balance(http: httpx.Client, learner: str = "L1") -> dict:
    deadline = time.monotonic() + 30
    while http.get("/health").json()["projection_lag"]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    answer = http.get(f"/v1/learners/{learner}/balance", params={"period": PERIOD})
    assert answer.status_code == 200, answer.text
    return answer.json()["categories"]


def learner(name: str) -> Agent:
    return Agent(name=name, account=AgentAccount(home_page="https://lms.example/", name=name))


def test_a_completed_course_credits_the_learner_and_voiding_it_takes_the_credit_back(bridged):
    lrs, http = bridged
    before = balance(http)
    completed = Statement(
        actor=learner("L1"), verb=Verb(id="http://adlnet.gov/expapi/verbs/completed"),
        object=Activity(id="https://lms.example/course/7"),
        result=Result(duration=timedelta(hours=2)), timestamp="2024-05-01T10:00:00+08:00")
    saved = lrs.save_statement(completed)
    assert saved.success, saved.data
    credited = balance(http)
    assert credited != before
    history = http.get("/v1/learners/L1/history").json()
    assert any(entry.get("envelope", entry).get("source") == "xapi-example-cmi5"
               for entry in history["entries"]), history

    voiding = Statement(actor=learner("L1"),
                        verb=Verb(id="http://adlnet.gov/expapi/verbs/voided"),
                        object=StatementRef(id=completed.id))
    assert lrs.save_statement(voiding).success
    assert balance(http) == before
    assert lrs.retrieve_statement(completed.id).response.status == 404
    assert lrs.retrieve_voided_statement(completed.id).success


def test_statements_about_unknown_actors_or_unmapped_activities_stay_in_the_lrs(bridged):
    lrs, http = bridged
    before = balance(http, "L2")
    for statement in (
            Statement(actor=learner("NOT-REGISTERED"),
                      verb=Verb(id="http://adlnet.gov/expapi/verbs/completed"),
                      object=Activity(id="https://lms.example/course/7")),
            Statement(actor=learner("L2"),
                      verb=Verb(id="http://adlnet.gov/expapi/verbs/completed"),
                      object=Activity(id="https://lms.example/course/unknown"))):
        assert lrs.save_statement(statement).success
    assert balance(http, "L2") == before
