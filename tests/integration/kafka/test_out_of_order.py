"""A district produced to a multi-partition topic arrives interleaved: org facts (keyed by
org) and learner facts (keyed by learner) on different partitions, shuffled besides. The
consumer must end with exactly the balances of the same facts ingested in order, and
dead-letter only what is invalid."""

from __future__ import annotations

import json
import random
from pathlib import Path

from infra.bootstrap import build_ledger
from infra.files.jsonl_ingest import ingest_file
from infra.sample.district import write_demo
from tests.integration.kafka.conftest import KafkaWorld


def _balances(settings, learner_ids: list[str]) -> dict[str, object]:
    ledger = build_ledger(settings)
    try:
        return {lid: (ledger.balance(lid, "dadukou-double-100", "2021-2025").model_dump(),
                      ledger.balance(lid, "cadre-regs-2023", "2024").model_dump(),
                      sorted(f.fact["external_id"] for f in ledger.facts_of(lid)))
                for lid in learner_ids}
    finally:
        ledger.close()


def _key(line: str) -> str | None:
    try:
        fact = json.loads(line)
    except json.JSONDecodeError:
        return None
    if fact.get("learner_id"):
        return str(fact["learner_id"])
    return f"org:{fact.get('payload', {}).get('org_id')}"


def test_a_shuffled_district_over_partitions_ends_as_if_sent_in_order(
        kafka_world: KafkaWorld, tmp_path: Path):
    ordered = tmp_path / "district.jsonl"
    write_demo(ordered, learners=10, seed=3)
    lines = ordered.read_text(encoding="utf-8").splitlines()
    reference_settings = kafka_world.settings.model_copy(
        update={"database_url": f"sqlite:///{tmp_path / 'reference.db'}",
                "database_schema": "public"})
    reference = build_ledger(reference_settings)
    try:
        in_order = ingest_file(reference, ordered, batch_size=1000)
    finally:
        reference.close()

    shuffled = lines[:]
    random.Random(5).shuffle(shuffled)
    kafka_world.produce([(_key(line), line.encode()) for line in shuffled])
    consumed = kafka_world.cli("consume", "--until-idle", "3", timeout=300,
                               STUDYLEDGER_KAFKA_MAX_POLL_RECORDS="40")
    assert consumed.returncode == 0, consumed.stderr[-3000:]

    dead = kafka_world.read_all(kafka_world.settings.kafka_topic_dead_letters)
    codes = sorted(dict(m.headers)["error.code"].decode() for m in dead)
    # Only what no order could fix: the demo's malformed, invalid and future lines.
    assert len(dead) == in_order.rejected, codes
    assert "prerequisite_missing" not in codes
    learner_ids = sorted({json.loads(line)["learner_id"] for line in lines
                          if '"learner.registered"' in line})
    assert _balances(kafka_world.settings, learner_ids) == _balances(reference_settings,
                                                                     learner_ids)
    ledger = build_ledger(kafka_world.settings)
    try:
        # The demo's two facts whose prerequisite never comes are still waiting, not lost.
        assert ledger.parked_count() == in_order.parked == 2
        assert all(r.broken is None for r in ledger.verify_all())
    finally:
        ledger.close()


def test_a_fact_parked_past_the_timeout_is_dead_lettered_then_redriven(
        kafka_world: KafkaWorld):
    from tests.factories import REGISTRATION, envelope

    org = envelope("org.registered", {"org_id": "R", "name": "区", "parent_id": None},
                   learner_id=None, source="zzb", external_id="org-R")
    session = envelope("study_session.recorded", {
        "course_id": "C1", "course_hours": 100 / 60, "required": False, "minutes": 100,
        "progress": 1}, learner_id="LATE1", source="lms", external_id="late-s1")
    kafka_world.produce([("org:R", json.dumps(org).encode()),
                         ("LATE1", json.dumps(session).encode())])
    consumed = kafka_world.cli("consume", "--until-idle", "4", timeout=120,
                               STUDYLEDGER_PARK_TIMEOUT_SECONDS="1")
    assert consumed.returncode == 0, consumed.stderr[-3000:]
    [letter] = kafka_world.read_all(kafka_world.settings.kafka_topic_dead_letters)
    headers = {k: v.decode() for k, v in letter.headers}
    assert headers["error.code"] == "prerequisite_timeout"
    assert "learner LATE1" in headers["error.message"]
    assert headers["original.partition"] != "-1"

    register = envelope("learner.registered", REGISTRATION | {"org_id": "R"},
                        learner_id="LATE1", source="hr", external_id="reg-LATE1")
    kafka_world.produce([("LATE1", json.dumps(register).encode())])
    consumed = kafka_world.cli("consume", "--until-idle", "3", timeout=120)
    assert consumed.returncode == 0, consumed.stderr[-3000:]
    redrive = kafka_world.cli("dead-letters", "redrive")
    assert redrive.returncode == 0, redrive.stdout + redrive.stderr
    assert "store dead letters: 1 stored" in redrive.stdout
    assert "(1 messages): 1 duplicate" in redrive.stdout  # the same fact, from the topic
    ledger = build_ledger(kafka_world.settings)
    try:
        assert [f.fact["external_id"] for f in ledger.facts_of("LATE1")] == [
            "reg-LATE1", "late-s1"]
    finally:
        ledger.close()
    again = kafka_world.cli("dead-letters", "redrive")
    assert "store dead letters: none" in again.stdout and again.returncode == 0
