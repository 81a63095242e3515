"""PostgreSQL stopped and started again under load: `serve` and `project` as real processes
on a private cluster, which the test stops (`pg_ctl stop -m fast`) and starts."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from domain.archive import LearnerArchive
from infra.bootstrap import build_ledger
from infra.settings import Settings
from infra.store.keys import KeyStore
from tests.conftest import _start_private_cluster, pg_ctl
from tests.e2e.conftest import NOW, _free_port, district_facts
from tests.factories import envelope

STORE_TIMEOUT = 2.0
# What a request may take beyond the store timeout while the store is down (HTTP, threads).
SLACK = 1.0

pytestmark = pytest.mark.postgres


@dataclass
class Cluster:
    url: str
    data: Path
    base: Path
    port: int

    def stop(self) -> None:
        pg_ctl(self.data, "stop", "-m", "fast", "-w")

    def start(self) -> None:
        pg_ctl(self.data, "start", "-w", "-l", str(self.base / "log"),
               "-o", f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1")


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    base = Path(tempfile.mkdtemp(prefix="studyledger-outage-"))
    port = _free_port()
    started = _start_private_cluster(base, port)
    assert started is not None, "no initdb: install the PostgreSQL server"
    url, data = started
    try:
        yield Cluster(url, data, base, port)
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            pg_ctl(data, "stop", "-m", "immediate")
        shutil.rmtree(base, ignore_errors=True)


@dataclass
class Call:
    what: str
    started: float
    seconds: float
    status: int | None  # None: no HTTP answer (connection refused, timeout)
    code: str | None = None
    retry_after: str | None = None


@dataclass
class Traffic:
    """Writes (each fact sent until acknowledged), balance reads and /health, in threads."""

    base: str
    platform: str
    auditor: str
    calls: list[Call] = field(default_factory=list)
    acknowledged: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def _call(self, http: httpx.Client, what: str, method: str, url: str, **kwargs: object
              ) -> httpx.Response | None:
        started = time.monotonic()
        try:
            response = http.request(method, url, **kwargs)  # type: ignore[arg-type]
        except httpx.TransportError:
            self.calls.append(Call(what, started, time.monotonic() - started, None))
            return None
        body = response.json() if response.headers.get("content-type", "").startswith(
            "application/json") else {}
        code = (body.get("error") or {}).get("code") if isinstance(body, dict) else None
        self.calls.append(Call(what, started, time.monotonic() - started, response.status_code,
                               code or (body.get("store") if what == "health" else None),
                               response.headers.get("retry-after")))
        return response

    def write(self) -> None:
        auth = {"Authorization": f"Bearer {self.platform}"}
        with httpx.Client(base_url=self.base, headers=auth, timeout=30) as http:
            n = 0
            while not self.stop.is_set():
                external_id = f"outage-{n}"
                fact = envelope("study_session.recorded", {
                    "course_id": f"C{n}", "course_hours": "1", "required": True,
                    "minutes": 50, "progress": "1"}, learner_id="L1", source="cela",
                    external_id=external_id, at="2024-05-01T10:00:00+08:00")
                response = self._call(http, "write", "POST", "/v1/events", json=fact)
                if response is not None and response.status_code in (200, 201):
                    self.acknowledged.append(external_id)
                    n += 1
                    time.sleep(0.05)
                else:
                    time.sleep(0.2)  # the same fact again: stored at most once, acked once

    def read(self) -> None:
        auth = {"Authorization": f"Bearer {self.auditor}"}
        with httpx.Client(base_url=self.base, timeout=30) as http:
            while not self.stop.is_set():
                self._call(http, "health", "GET", "/health")
                self._call(http, "balance", "GET", "/v1/learners/L1/balance",
                           params={"period": "2021-2025"}, headers=auth)
                time.sleep(0.1)


def _record_district(settings: Settings) -> int:
    """The test district recorded; the log position of its last fact."""
    ledger = build_ledger(settings)
    ledger.record_facts(district_facts(), now=NOW, channel="test")
    end = ledger.recorder.max_notification_id()
    ledger.close()
    return end


def _stop_and_show(process: subprocess.Popen, name: str, log: Path, tail: int) -> None:
    """SIGTERM (SIGKILL after 30 s), then the end of its log, for a failure's report."""
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
    print(f"--- {name} log ---\n{log.read_text()[-tail:]}")


def wait_for(predicate, seconds: float, what: str | Callable[[], str]) -> float:  # noqa: ANN001
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < seconds, \
            f"{what if isinstance(what, str) else what()} not within {seconds} s"
        time.sleep(0.1)
    return time.monotonic() - started


def test_serve_and_project_ride_out_a_postgres_restart(cluster: Cluster, tmp_path: Path):
    settings = Settings(database_url=cluster.url, store_timeout_seconds=STORE_TIMEOUT)
    ledger = build_ledger(settings)
    ledger.record_facts(district_facts(), now=NOW, channel="test")
    keys = KeyStore(settings)
    platform, auditor = keys.create("platform", "A", "cela"), keys.create("auditor", "A")
    keys.close()
    ledger.close()

    port = _free_port()
    env = os.environ | {"STUDYLEDGER_DATABASE_URL": cluster.url,
                        "STUDYLEDGER_STORE_TIMEOUT_SECONDS": str(STORE_TIMEOUT),
                        "STUDYLEDGER_PROJECTION_BATCH_SIZE": "50"}
    logs = {name: (tmp_path / f"{name}.log").open("w+") for name in ("serve", "project")}
    serve = subprocess.Popen(
        [sys.executable, "-m", "infra.cli", "serve", "--port", str(port), "--no-project"],
        env=env, cwd=tmp_path, stdout=logs["serve"], stderr=subprocess.STDOUT)
    project = subprocess.Popen([sys.executable, "-m", "infra.cli", "project", "--poll", "0.1"],
                               env=env, cwd=tmp_path, stdout=logs["project"],
                               stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    traffic = Traffic(base, platform, auditor)
    threads = [threading.Thread(target=traffic.write), threading.Thread(target=traffic.read)]
    try:
        wait_for(lambda: _health(base).get("status") == "ok", 60, "serve answering")
        for thread in threads:
            thread.start()
        wait_for(lambda: len(traffic.acknowledged) >= 20, 30, "writes going in")

        cluster.stop()
        stopped_at = time.monotonic()
        time.sleep(8)
        down = [c for c in traffic.calls if c.started >= stopped_at]
        cluster.start()
        restarted_at = time.monotonic()

        back = wait_for(lambda: any(c.status in (200, 201) and c.what == "write"
                                    and c.started >= restarted_at for c in traffic.calls),
                        10, "a write succeeding after the restart")
        for what in ("health", "balance"):
            wait_for(lambda w=what: any(c.status == 200 and c.what == w
                                        and c.started >= restarted_at for c in traffic.calls),
                     10, f"{what} answering 200 after the restart")
        acknowledged_before = len(traffic.acknowledged)
        wait_for(lambda: len(traffic.acknowledged) >= acknowledged_before + 20, 20,
                 "writes going in again")
        traffic.stop.set()
        for thread in threads:
            thread.join(timeout=30)

        # While it was down: 503 store_unavailable with Retry-After, health "down", no hangs.
        assert down, "no request was made while the store was down"
        refused = [c for c in down if c.status == 503]
        assert refused and {c.code for c in refused} <= {"store_unavailable", "down"}, down
        assert all(c.retry_after for c in refused), refused
        assert any(c.what == "health" and c.code == "down" for c in refused), refused
        assert any(c.what == "write" and c.code == "store_unavailable" for c in refused)
        assert not [c for c in down if c.status not in (503, None) and c.status >= 500], down
        slowest = max(traffic.calls, key=lambda c: c.seconds)
        assert slowest.seconds < STORE_TIMEOUT + SLACK, slowest
        print(f"\nrequests while down: {len(down)}, slowest of all {slowest.seconds:.2f} s "
              f"({slowest.what}); first write after pg_ctl start returned: {back:.2f} s")

        # Every acknowledged fact stored exactly once; the views catch up by themselves.
        ledger = build_ledger(settings)
        stored = [f.fact["external_id"] for f in ledger.facts_of("L1")
                  if f.fact["type"] == "study_session.recorded"]
        assert sorted(stored) == sorted(traffic.acknowledged)
        assert len(set(stored)) == len(stored)
        recorded = ledger.recorder.max_notification_id()
        last_health: list[dict] = [{}]

        def views_caught_up() -> bool:
            last_health[0] = _health(base)
            return last_health[0].get("projected_position") == recorded

        caught_up = wait_for(views_caught_up, 30,
                             lambda: f"the views catching up to {recorded} "
                                     f"(last /health: {last_health[0]})")
        print(f"views caught up {caught_up:.2f} s after the writes stopped")
        assert ledger.get_existing(LearnerArchive, LearnerArchive.id_for("L1")) is not None
        ledger.close()
        assert project.poll() is None, "studyledger project exited"
    finally:
        traffic.stop.set()
        for process in (serve, project):
            process.send_signal(signal.SIGTERM)
        for process in (serve, project):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        output = {name: (tmp_path / f"{name}.log").read_text() for name in logs}
        for name, text in output.items():  # pytest shows this only when the test fails
            print(f"--- {name} log (last 6,000 characters) ---\n{text[-6000:]}")
    assert (serve.returncode, project.returncode) == (0, 0), output
    assert "Traceback" not in output["serve"] + output["project"], output
    assert "store unavailable" in output["project"], output["project"]


def _health(base: str) -> dict:
    try:
        return httpx.get(f"{base}/health", timeout=10).json()
    except (httpx.TransportError, ValueError):
        return {}


def test_the_relay_rides_out_a_postgres_restart(cluster: Cluster, tmp_path: Path):
    """`relay` as a process, publishing to a real broker; the database stopped under it and
    started again. It waits, then publishes every fact, the ones recorded after too."""
    from infra.bench.broker import tansu_broker
    from infra.store.relay_position import RelayPositionStore
    from tests.integration.kafka.conftest import read_topic

    settings = Settings(database_url=cluster.url, store_timeout_seconds=STORE_TIMEOUT)
    ledger = build_ledger(settings)
    ledger.record_facts(district_facts(), now=NOW, channel="test")
    before = ledger.recorder.max_notification_id()
    ledger.close()
    with tansu_broker() as bootstrap:
        env = os.environ | {"STUDYLEDGER_DATABASE_URL": cluster.url,
                            "STUDYLEDGER_STORE_TIMEOUT_SECONDS": str(STORE_TIMEOUT),
                            "STUDYLEDGER_KAFKA_BOOTSTRAP": bootstrap,
                            "STUDYLEDGER_KAFKA_REPORT_SECONDS": "0.2"}
        made = subprocess.run([sys.executable, "-m", "infra.cli", "topics", "create",
                               "--partitions", "2"], env=env, capture_output=True, text=True,
                              timeout=60)
        assert made.returncode == 0, made.stderr
        log_path = tmp_path / "relay.log"
        with log_path.open("w") as log:
            relay = subprocess.Popen([sys.executable, "-m", "infra.cli", "relay", "--poll",
                                      "0.1"], env=env, cwd=tmp_path, stdout=log,
                                     stderr=subprocess.STDOUT)
        topic = settings.kafka_topic_recorded
        try:
            positions = RelayPositionStore(settings, topic)
            wait_for(lambda: positions.position() == before, 60, "the relay catching up")
            positions.close()
            cluster.stop()
            # It says it waits; its progress report says what it cannot know meanwhile.
            wait_for(lambda: relay.poll() is not None
                     or "position unknown (store unavailable)" in log_path.read_text(), 30,
                     "the relay meeting the stopped database")
            assert "store unavailable; the relay waits" in log_path.read_text()
            assert relay.poll() is None, log_path.read_text()  # waiting, not gone
            cluster.start()
            ledger = build_ledger(settings)
            ledger.record_facts([envelope_fact(n) for n in range(30)], now=NOW, channel="test")
            end = ledger.recorder.max_notification_id()
            ledger.close()
            positions = RelayPositionStore(settings, topic)
            wait_for(lambda: positions.position() == end, 30, "the relay going on after")
            positions.close()
            assert relay.poll() is None, log_path.read_text()
        finally:
            _stop_and_show(relay, "relay", log_path, 6000)
        published = [json.loads(message.value)["position"]
                     for message in read_topic(bootstrap, topic)]
    log_text = log_path.read_text()
    assert relay.returncode == 0 and "Traceback" not in log_text, log_text
    assert "store back" in log_text, log_text
    assert set(published) == set(range(1, end + 1))  # nothing skipped
    assert len(published) == end  # it was idle when the store went: nothing published twice


def envelope_fact(n: int):  # noqa: ANN201
    from tests.factories import incoming

    return incoming("study_session.recorded", {
        "course_id": f"R{n}", "course_hours": "1", "required": True, "minutes": 50,
        "progress": "1"}, learner_id="L1", source="cela", external_id=f"after-{n}",
        at="2024-05-01T10:00:00+08:00")


def test_daemons_started_before_the_database_wait_for_it(cluster: Cluster, tmp_path: Path):
    """`serve`, `project`, `relay` and `consume` started while the database is down say
    they wait, stay up, and start once it answers: the API answers (503 until then), the
    relay publishes and the views catch up."""
    from infra.bench.broker import tansu_broker
    from infra.store.relay_position import RelayPositionStore

    cluster.stop()
    with tansu_broker() as bootstrap:
        env = os.environ | {"STUDYLEDGER_DATABASE_URL": cluster.url,
                            "STUDYLEDGER_STORE_TIMEOUT_SECONDS": str(STORE_TIMEOUT),
                            "STUDYLEDGER_KAFKA_BOOTSTRAP": bootstrap,
                            "STUDYLEDGER_KAFKA_SESSION_TIMEOUT_MS": "2000",
                            "STUDYLEDGER_KAFKA_HEARTBEAT_INTERVAL_MS": "500"}
        made = subprocess.run([sys.executable, "-m", "infra.cli", "topics", "create",
                               "--partitions", "2"], env=env, capture_output=True, text=True,
                              timeout=60)
        assert made.returncode == 0, made.stderr
        port = _free_port()
        commands = {"project": ["project", "--poll", "0.1"], "relay": ["relay", "--poll", "0.1"],
                    "consume": ["consume"],
                    "serve": ["serve", "--no-project", "--port", str(port)]}
        logs = {name: tmp_path / f"{name}.log" for name in commands}
        processes = {}
        for name, argv in commands.items():
            with logs[name].open("w") as log:
                processes[name] = subprocess.Popen(
                    [sys.executable, "-m", "infra.cli", *argv], env=env, cwd=tmp_path,
                    stdout=log, stderr=subprocess.STDOUT)
        try:
            for name, process in processes.items():
                wait_for(lambda p=process, n=name: p.poll() is not None
                         or "waiting for it" in logs[n].read_text(), 30,
                         f"{name} saying it waits")
                assert process.poll() is None, logs[name].read_text()  # waiting, not gone
            _assert_serving_503(f"http://127.0.0.1:{port}")
            cluster.start()
            settings = Settings(database_url=cluster.url, store_timeout_seconds=STORE_TIMEOUT)
            end = _record_district(settings)
            wait_for(lambda: f"position {end}" in logs["project"].read_text(), 60,
                     lambda: f"the views catching up: {logs['project'].read_text()[-2000:]}")
            positions = RelayPositionStore(settings, settings.kafka_topic_recorded)
            wait_for(lambda: positions.position() == end, 60, "the relay publishing")
            positions.close()
            wait_for(lambda: "partitions assigned" in logs["consume"].read_text(), 60,
                     "consume joining its group")
            wait_for(lambda: _health(f"http://127.0.0.1:{port}").get("store")
                     not in (None, "down"), 60, "serve answering")
            for name, process in processes.items():
                assert process.poll() is None, logs[name].read_text()
        finally:
            for process in processes.values():
                process.terminate()
            for process in processes.values():
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
            for name, path in logs.items():
                print(f"--- {name} log ---\n{path.read_text()[-4000:]}")
    for name, process in processes.items():
        text = logs[name].read_text()
        assert process.returncode == 0 and "Traceback" not in text, text
        assert "answers after" in text, text


def test_serve_with_its_projections_started_before_the_database(cluster: Cluster,
                                                                  tmp_path: Path):
    """`serve` keeping the views itself, started while the database is down: 503 until it
    answers, then the API and the views catch up with what is recorded."""
    cluster.stop()
    port = _free_port()
    env = os.environ | {"STUDYLEDGER_DATABASE_URL": cluster.url,
                        "STUDYLEDGER_STORE_TIMEOUT_SECONDS": str(STORE_TIMEOUT)}
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        serve = subprocess.Popen(
            [sys.executable, "-m", "infra.cli", "serve", "--port", str(port)], env=env,
            cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        _assert_serving_503(base)
        cluster.start()
        end = _record_district(Settings(database_url=cluster.url,
                                        store_timeout_seconds=STORE_TIMEOUT))
        wait_for(lambda: _health(base).get("projected_position") == end, 60,
                 lambda: f"the views catching up: {log.read_text()[-2000:]}")
        assert _health(base)["status"] == "ok"
    finally:
        _stop_and_show(serve, "serve", log, 4000)
    text = log.read_text()
    assert serve.returncode == 0 and "Traceback" not in text, text
    assert "answers after" in text, text


def _assert_serving_503(base: str) -> None:
    """`serve` started before its store has its port open and says why it cannot answer:
    503 with Retry-After, as when the store goes away later."""
    wait_for(lambda: _health(base) != {}, 30, "serve opening its port")
    health = httpx.get(f"{base}/health", timeout=10)
    assert health.status_code == 503, health.text
    assert health.headers["Retry-After"] and health.json()["store"] == "down", health.text
    api = httpx.get(f"{base}/v1/learners/L1/balance", timeout=10)
    assert api.status_code == 503 and api.headers["Retry-After"], api.text
    assert api.json()["error"]["code"] == "store_unavailable", api.text
    page = httpx.get(f"{base}/boards/dadukou-double-100/2021-2025?org=500104", timeout=10)
    assert page.status_code == 503 and page.headers["content-type"].startswith("text/html")
    fact = httpx.post(f"{base}/v1/events", json={}, timeout=10)
    assert fact.status_code == 503, fact.text


def test_a_database_that_refuses_the_process_ends_it_at_once(postgres_url: str,
                                                             tmp_path: Path):
    """No waiting for what will not come by itself: a database that does not exist."""
    from urllib.parse import urlsplit

    url = urlsplit(postgres_url)._replace(path="/studyledger_no_such_database").geturl()
    env = os.environ | {"STUDYLEDGER_DATABASE_URL": url}
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "infra.cli", "project"], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "does not exist" in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert "waiting for it" not in done.stdout + done.stderr
    assert time.monotonic() - started < 30
