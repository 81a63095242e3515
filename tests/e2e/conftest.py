"""A real StudyLedger HTTP server per backend: uvicorn on a loopback port, the projections
running in a thread, a small district, and one API key per role."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from api.app import create_app
from infra.serve import ProjectionThread, app_in_thread, build_services, free_port
from infra.settings import Settings
from infra.store.keys import KeyStore
from tests.factories import REGISTRATION, incoming

NOW = datetime(2026, 11, 22, tzinfo=UTC)


def _free_port() -> int:
    return free_port()


def district_facts() -> list:
    """R -> A -> A1, R -> B; A's board is published. L1, L2 in A's subtree, L3 in B."""
    def org(org_id: str, parent: str | None):  # noqa: ANN202
        return incoming("org.registered", {"org_id": org_id, "name": f"单位{org_id}",
                                           "parent_id": parent}, learner_id=None)

    def learner(learner_id: str, org_id: str, name: str):  # noqa: ANN202
        return incoming("learner.registered", REGISTRATION | {"org_id": org_id, "name": name},
                        learner_id=learner_id, at="2021-01-04T09:00:00+08:00",
                        source="hr", external_id=f"reg-{learner_id}")

    return [org("R", None), org("A", "R"), org("A1", "A"), org("B", "R"),
            incoming("org.board_published", {"org_id": "A", "published": True},
                     learner_id=None),
            learner("L1", "A", "张三明"), learner("L2", "A1", "欧阳明华"),
            learner("L3", "B", "李四")]


@dataclass
class RunningApi:
    base_url: str
    keys: dict[str, str]  # role name -> secret
    settings: Settings
    services: object

    def client(self, role: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.keys[role]}"} if role else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=30)


def start_api(settings: Settings) -> Iterator[RunningApi]:
    services = build_services(settings)
    results = services.ledger.record_facts(district_facts(), now=NOW, channel="test")
    assert {r.status for r in results} == {"stored"}
    store = KeyStore(settings)
    keys = {
        "platform": store.create("platform", "A", "cela"),
        "reviewer": store.create("reviewer", "A"),
        "admin": store.create("admin", "A"),
        "auditor": store.create("auditor", "A"),
        "auditor_R": store.create("auditor", "R"),
        "auditor_B": store.create("auditor", "B"),
    }
    revoked = store.create("auditor", "A")
    store.revoke(revoked.split("_")[1])
    keys["revoked"] = revoked
    try:
        with serving(settings, services, poll_seconds=0.05) as base_url:
            yield RunningApi(base_url, keys, settings, services)
    finally:
        store.close()


@contextmanager
def serving(settings: Settings, services: Any = None, poll_seconds: float = 0.1
            ) -> Iterator[str]:
    """The API under uvicorn on a free loopback port, views kept current; yields its URL."""
    services = services or build_services(settings)
    projections = ProjectionThread(settings, poll_seconds=poll_seconds).start()
    try:
        with app_in_thread(create_app(services)) as base_url:
            # Tests start from projected views: what they read is the views' answer, not a
            # race with the projection thread (a loaded machine can take seconds at first).
            deadline = time.monotonic() + 60
            while projections.projector.lag() > 0:
                if time.monotonic() > deadline:
                    raise RuntimeError("the views did not catch up with the store")
                time.sleep(0.02)
            yield base_url
    finally:
        projections.close()
        services.views.close()
        services.ledger.close()


STORES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def fresh_store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                **overrides: object) -> Iterator[Settings]:
    """Settings for an empty store of the fixture's param: a SQLite file, or a PostgreSQL
    schema dropped afterwards."""
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("api") / "ledger.db"
        yield Settings(database_url=f"sqlite:///{path}", **overrides)
        return
    url = request.getfixturevalue("postgres_url")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield Settings(database_url=url, database_schema=schema, **overrides)
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(scope="module", params=STORES)
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
        ) -> Iterator[RunningApi]:
    for settings in fresh_store(request, tmp_path_factory, api_max_body_bytes=256 * 1024,
                                api_wait_timeout_seconds=20.0):
        yield from start_api(settings)


def wait_projected(api: RunningApi) -> None:
    deadline = time.monotonic() + 30
    with api.client() as http:
        while http.get("/health").json()["projection_lag"]:
            assert time.monotonic() < deadline
            time.sleep(0.05)


@pytest.fixture(scope="module")
def district(api: RunningApi) -> RunningApi:
    """60 more learners in A1 with distinct scores (for paging); L1 with a class, a required
    course and an elective one in 2024 (for the certificate)."""
    facts = []
    for n in range(60):
        learner = f"P{n:03d}"
        facts.append(incoming("learner.registered", REGISTRATION | {"org_id": "A1",
                              "name": f"王{n:02d}明"}, learner_id=learner,
                              at="2021-01-04T09:00:00+08:00", external_id=f"reg-{learner}"))
        facts.append(incoming("training.attended", {"program_id": "P", "kind": "thematic",
                                                    "hours": 4 * (n + 1), "leave_hours": 0},
                              learner_id=learner, at="2022-05-01T10:00:00+08:00"))
    facts += [
        incoming("training.attended", {"program_id": "党校春季班", "kind": "thematic",
                                       "hours": 40, "leave_hours": 0}, learner_id="L1",
                 at="2024-04-01T17:00:00+08:00", source="school", external_id="class-L1"),
        incoming("study_session.recorded", {"course_id": "C-必修-1", "course_hours": "6",
                                            "required": True, "minutes": 300,
                                            "progress": "1"}, learner_id="L1",
                 at="2024-05-01T10:00:00+08:00", source="lms"),
        incoming("study_session.recorded", {"course_id": "C-选修-2", "course_hours": "3",
                                            "required": False, "minutes": 200,
                                            "progress": "0.95"}, learner_id="L1",
                 at="2024-06-01T10:00:00+08:00", source="lms"),
    ]
    results = api.services.ledger.record_facts(facts, now=NOW, channel="test")
    assert {r.status for r in results} == {"stored"}
    wait_projected(api)
    return api


