"""`studyledger doctor` against a real broker: reachable, and the three topics there."""

from __future__ import annotations

import json

from tests.conftest import sqlite_settings
from tests.factories import REGISTRATION, envelope
from tests.integration.kafka.conftest import KafkaWorld

FACTS = [envelope("org.registered", {"org_id": "500104-07", "name": "单位", "parent_id": None},
                  learner_id=None, at="2021-01-01T09:00:00+08:00", external_id="org"),
         envelope("learner.registered", REGISTRATION, at="2021-01-04T09:00:00+08:00",
                  external_id="reg")]


def test_doctor_fails_until_the_topics_exist(broker, tmp_path):
    world = KafkaWorld(sqlite_settings(tmp_path), broker, tmp_path)
    facts = tmp_path / "facts.jsonl"
    facts.write_text("".join(json.dumps(f, ensure_ascii=False) + "\n" for f in FACTS),
                     encoding="utf-8")
    assert world.cli("ingest", str(facts)).returncode == 0
    world.cli("project", "--once")

    before = world.cli("doctor")
    assert before.returncode == 5
    assert f"ok    kafka: {broker} reachable\n" in before.stdout
    assert ("FAIL  topics: missing: studyledger.events, studyledger.events.dlq, "
            "studyledger.recorded: run `studyledger topics create`") in before.stdout

    assert world.cli("topics", "create", "--partitions", "1").returncode == 0
    after = world.cli("doctor")
    assert after.returncode == 0, after.stdout
    assert ("ok    topics: studyledger.events, studyledger.events.dlq, studyledger.recorded\n"
            in after.stdout)
