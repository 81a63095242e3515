"""deploy/Procfile as real processes: every line of it, on PostgreSQL and a Kafka broker.

Each Procfile line runs as its own process with the production settings the guide names
(docs/deploy.md), its ports swapped for free ones; a small district arrives over HTTP and
over Kafka, and the test reads it back through the API, the metrics and the relayed topic."""

from __future__ import annotations

import json
import re
import shlex
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from infra.settings import Settings
from tests.factories import envelope
from tests.integration.kafka.conftest import KafkaWorld, _free_port, fact_message

PROCFILE = Path(__file__).resolve().parents[2] / "deploy" / "Procfile"
POLICY, PERIOD = "dadukou-double-100", "2024"

pytestmark = pytest.mark.postgres


def procfile_lines() -> list[tuple[str, dict[str, str], list[str]]]:
    """(name, environment assignments, argv after `studyledger`) per process line."""
    lines = []
    for raw in PROCFILE.read_text().splitlines():
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        name, _, command = raw.partition(":")
        words = shlex.split(command)
        env = {}
        while "=" in words[0]:
            key, _, value = words.pop(0).partition("=")
            env[key] = value
        assert words[0] == "studyledger", raw
        lines.append((name.strip(), env, words[1:]))
    return lines


def with_free_ports(env: dict[str, str], argv: list[str]) -> tuple[dict[str, str], list[str]]:
    """The line with every port it names replaced by a free one, so runs never collide."""
    env = {k: str(_free_port()) if k == "STUDYLEDGER_METRICS_PORT" else v for k, v in env.items()}
    argv = list(argv)
    if "--port" in argv:
        argv[argv.index("--port") + 1] = str(_free_port())
    return env, argv


def wait_for(what: str, check: Callable[[], Any], processes: dict, seconds: float = 30) -> Any:
    """Poll until `check` answers something truthy; fail naming `what` at the deadline, or at
    once when a process of the topology died."""
    deadline, last = time.monotonic() + seconds, None
    while time.monotonic() < deadline:
        for name, process in processes.items():
            assert process.poll() is None, f"{name} exited {process.returncode}"
        try:
            last = check()
        except (httpx.HTTPError, OSError) as error:
            last = error
        else:
            if last:
                return last
        time.sleep(0.1)
    pytest.fail(f"{what}: not within {seconds} s (last: {last!r})")


@pytest.fixture
def world(broker: str, postgres_url: str, pg_schema: str,  # noqa: F811 - fixture
          tmp_path: Path) -> KafkaWorld:
    return KafkaWorld(Settings(database_url=postgres_url, database_schema=pg_schema),
                      broker, tmp_path)


@pytest.fixture
def topology(world: KafkaWorld) -> Iterator[dict[str, Any]]:
    """Every Procfile line running; the API's base URL and the metrics ports."""
    production = {"STUDYLEDGER_SECRET_KEY": "k" * 40,
                  "STUDYLEDGER_PUBLIC_BASE_URL": "https://ledger.example.org",
                  "STUDYLEDGER_STORE_TIMEOUT_SECONDS": "5"}
    made = world.cli("topics", "create", "--partitions", "4", **production)
    assert made.returncode == 0, made.stderr
    processes: dict[str, subprocess.Popen[str]] = {}
    base_url, metrics_ports = "", {}
    try:
        for name, env, argv in procfile_lines():
            env, argv = with_free_ports(env, argv)
            if "--port" in argv:
                base_url = f"http://127.0.0.1:{argv[argv.index('--port') + 1]}"
            if "STUDYLEDGER_METRICS_PORT" in env:
                metrics_ports[name] = int(env["STUDYLEDGER_METRICS_PORT"])
            processes[name] = world.start(*argv, **production, **env)
        assert base_url, "the Procfile runs no `serve --port`"
        yield {"world": world, "processes": processes, "base_url": base_url,
               "metrics_ports": metrics_ports, "env": production}
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for name, process in processes.items():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
            if process.returncode not in (0, -signal.SIGTERM):
                print(f"--- {name} exited {process.returncode}:\n"
                      f"{process.log_path.read_text()}")  # type: ignore[attr-defined]


def org(org_id: str, parent: str | None) -> dict:
    return envelope("org.registered", {"org_id": org_id, "name": f"单位{org_id}",
                                       "parent_id": parent}, learner_id=None,
                    source="zzb", external_id=f"org-{org_id}")


def learner(learner_id: str, source: str, hours: list[str]) -> list[dict]:
    facts = [envelope("learner.registered", {"name": "李四", "org_id": "D-01",
                                             "rank": "township_section_and_below",
                                             "category": "公务员"},
                      learner_id=learner_id, source=source, external_id=f"reg-{learner_id}",
                      at="2024-01-04T09:00:00+08:00")]
    facts += [envelope("study_session.recorded", {"course_id": f"C{n}", "course_hours": h,
                                                  "required": False, "minutes": 60,
                                                  "progress": 1},
                       learner_id=learner_id, source=source, external_id=f"{learner_id}-s{n}",
                       at="2024-03-01T20:00:00+08:00")
              for n, h in enumerate(hours)]
    return facts


def test_the_procfile_topology_records_projects_relays_and_reports(topology):
    world: KafkaWorld = topology["world"]
    processes, base_url = topology["processes"], topology["base_url"]
    assert sorted(processes) == ["consume1", "consume2", "project", "relay", "web"]

    def key(*args: str) -> str:
        made = world.cli("keys", "create", *args, **topology["env"])
        assert made.returncode == 0, made.stderr
        return made.stdout.strip()

    admin = key("--role", "admin", "--org", "D")
    platform = key("--role", "platform", "--org", "D", "--source", "lms")
    kafka_facts = learner("K1", "kafka-lms", ["1.5", "2.25"])
    http_facts = learner("H1", "lms", ["3", "0.5", "1.25"])

    wait_for("the API answers /health", lambda: httpx.get(f"{base_url}/health").status_code
             == 200, processes)
    with httpx.Client(base_url=base_url, timeout=30,
                      headers={"Authorization": f"Bearer {admin}"}) as http:
        orgs = http.post("/v1/events/batch", json=[org("D", None), org("D-01", "D")])
        assert [r["status"] for r in orgs.json()["results"]] == ["stored"] * 2, orgs.text
    # Over Kafka, the learner's facts land on the partitions of two consumers' group.
    world.produce([fact_message(f) for f in kafka_facts])
    with httpx.Client(base_url=base_url, timeout=30,
                      headers={"Authorization": f"Bearer {platform}"}) as http:
        answer = http.post("/v1/events/batch", json=http_facts)
        assert {r["status"] for r in answer.json()["results"]} == {"stored"}, answer.text

    expected = {"H1": "4.75", "K1": "3.75"}
    with httpx.Client(base_url=base_url, timeout=30,
                      headers={"Authorization": f"Bearer {admin}"}) as http:
        def balances() -> dict[str, str] | None:
            found = {}
            for learner_id in expected:
                answer = http.get(f"/v1/learners/{learner_id}/balance",
                                  params={"policy": POLICY, "period": PERIOD})
                if answer.status_code != 200:
                    return None
                found[learner_id] = answer.json()["categories"]["self_study"]["raw"]
            return found if found == expected else None

        wait_for(f"the balances {expected}", balances, processes)
        health = wait_for("/health with no projection lag", lambda: (
            h := http.get("/health").json())["projection_lag"] == 0 and h, processes)
        assert health["parked"] == 0, health

    scrape = httpx.get(f"{base_url}/metrics")
    assert scrape.status_code == 200
    for series in ("studyledger_http_requests_total", "studyledger_facts_total",
                   "studyledger_log_head_position", "studyledger_projection_lag"):
        assert series in scrape.text, series
    for name, port in topology["metrics_ports"].items():
        answer = wait_for(f"{name}'s metrics", lambda port=port: httpx.get(
            f"http://127.0.0.1:{port}/metrics"), processes)
        assert re.search(r"^studyledger_\w+", answer.text, re.M), name
    consumed = "\n".join(httpx.get(f"http://127.0.0.1:{topology['metrics_ports'][name]}"
                                   "/metrics").text for name in ("consume1", "consume2"))
    assert re.search(r'studyledger_facts_total\{channel="kafka",status="stored"\} 3\.0',
                     consumed), consumed

    exported = world.cli("export", "--out", "all.jsonl", **topology["env"])
    assert exported.returncode == 0, exported.stderr
    recorded = {json.loads(line)["event_id"]
                for line in (world.tmp / "all.jsonl").read_text().splitlines()}
    assert len(recorded) == 2 + len(kafka_facts) + len(http_facts)

    def relayed() -> set[str] | None:
        ids = {dict(m.headers)["event_id"].decode()
               for m in world.read_all(world.settings.kafka_topic_recorded)}
        return ids if ids >= recorded else None

    assert wait_for("every recorded fact on studyledger.recorded", relayed, processes) \
        == recorded
