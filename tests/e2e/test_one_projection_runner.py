"""Two `studyledger project` processes on one store: one projects, the other stands by, and
takes over (and catches up) when the first is SIGKILLed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from infra.bootstrap import build_ledger
from infra.settings import Settings
from infra.views.writer import ViewStore
from tests.e2e.conftest import NOW, district_facts
from tests.integration.test_projection_stall import sessions


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    if request.param == "sqlite":
        yield Settings(database_url=f"sqlite:///{tmp_path / 'runners.db'}")
        return
    url = request.getfixturevalue("postgres_url")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    yield Settings(database_url=url, database_schema=schema)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def wait_for(predicate, seconds: float, what: str, detail=str) -> float:  # noqa: ANN001
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < seconds, f"{what} not within {seconds} s: {detail()}"
        time.sleep(0.1)
    return time.monotonic() - started


def test_one_runner_projects_and_the_other_takes_over_when_it_dies(settings, tmp_path):
    ledger = build_ledger(settings)
    ledger.record_facts(district_facts() + sessions(0, 10), now=NOW, channel="test")
    views = ViewStore(settings)
    env = os.environ | {"STUDYLEDGER_DATABASE_URL": settings.database_url,
                        "STUDYLEDGER_DATABASE_SCHEMA": settings.database_schema,
                        "STUDYLEDGER_PROJECTION_BATCH_SIZE": "5"}
    logs = [tmp_path / "first.log", tmp_path / "second.log"]
    runners = [subprocess.Popen([sys.executable, "-m", "infra.cli", "project", "--poll", "0.1"],
                                env=env, cwd=tmp_path, stdout=log.open("w"),
                                stderr=subprocess.STDOUT) for log in logs]

    def output(index: int) -> str:
        return logs[index].read_text()

    try:
        def caught_up() -> bool:
            return views.position() == ledger.recorder.max_notification_id()

        wait_for(lambda: all("projection runner" in output(i) or "another projection runner"
                             in output(i) for i in (0, 1)) and caught_up(), 60, "both started",
                 lambda: [output(0), output(1), views.position()])
        ledger.record_facts(sessions(10, 30), now=NOW, channel="test")
        wait_for(caught_up, 30, "the views catching up")
        time.sleep(1)  # the one standing by would have projected something by now

        projecting = [i for i in (0, 1) if "applied" in output(i)]
        assert len(projecting) == 1, [output(0), output(1)]
        active = projecting[0]
        standby = 1 - active
        assert "standing by" in output(standby) and "holds the lease" in output(active)

        runners[active].send_signal(signal.SIGKILL)
        runners[active].wait(timeout=30)
        ledger.record_facts(sessions(30, 50), now=NOW, channel="test")
        took = wait_for(caught_up, 30, "the other runner catching up")
        print(f"\nthe standby caught up {took:.2f} s after the active runner was killed")
        assert "holds the lease" in output(standby) and "applied" in output(standby)
        assert runners[standby].poll() is None
    finally:
        for runner in runners:
            if runner.poll() is None:
                runner.send_signal(signal.SIGTERM)
        for runner in runners:
            runner.wait(timeout=30)
    assert runners[standby].returncode == 0, output(standby)
    for i in (0, 1):
        assert "Traceback" not in output(i) and "UniqueViolation" not in output(i), output(i)
    assert views.position() == ledger.recorder.max_notification_id()
    views.close()
    ledger.close()
