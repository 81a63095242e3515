"""A real StudyLedger HTTP server per backend: uvicorn on a loopback port, the projections
running in a thread, a small district, and one API key per role."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psycopg
import pytest
import uvicorn

from api.app import create_app
from infra.key_store import KeyStore
from infra.serve import ProjectionThread, build_services
from infra.settings import Settings
from tests.factories import REGISTRATION, incoming

NOW = datetime(2026, 11, 22, tzinfo=UTC)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
    projections = ProjectionThread(settings, poll_seconds=0.05).start()
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(services), host="127.0.0.1", port=port,
                                           log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the API server did not start"
        time.sleep(0.02)
    try:
        yield RunningApi(f"http://127.0.0.1:{port}", keys, settings, services)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        projections.close()
        store.close()


@pytest.fixture(scope="module", params=["sqlite",
                                        pytest.param("postgres", marks=pytest.mark.postgres)])
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
        ) -> Iterator[RunningApi]:
    overrides = {"api_max_body_bytes": 256 * 1024, "api_wait_timeout_seconds": 20.0}
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("api") / "ledger.db"
        yield from start_api(Settings(database_url=f"sqlite:///{path}", **overrides))
        return
    url = request.getfixturevalue("postgres_url")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield from start_api(Settings(database_url=url, database_schema=schema, **overrides))
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
