"""Kafka ingestion, dead letters and the relay against a real broker, as processes."""

from __future__ import annotations

import json
import signal
import time
from datetime import UTC, datetime

from kafka import KafkaConsumer, TopicPartition

from domain.identity import fact_event_id
from infra.bootstrap import build_ledger
from tests.factories import REGISTRATION, envelope, incoming
from tests.kafka.conftest import KafkaWorld, fact_message

NOW = datetime(2026, 11, 22, tzinfo=UTC)


def record_orgs(world: KafkaWorld) -> int:
    ledger = build_ledger(world.settings)
    facts = [incoming("org.registered", {"org_id": "R", "name": "区", "parent_id": None},
                      learner_id=None, external_id="org-R"),
             incoming("org.registered", {"org_id": "A", "name": "单位", "parent_id": "R"},
                      learner_id=None, external_id="org-A")]
    assert {r.status for r in ledger.record_facts(facts, now=NOW, channel="t")} == {"stored"}
    ledger.close()
    return len(facts)


def learner_facts(learners: int, per_learner: int = 4, prefix: str = "K") -> list[dict]:
    facts = []
    for n in range(learners):
        learner = f"{prefix}{n:05d}"
        facts.append(envelope("learner.registered", REGISTRATION | {"org_id": "A"},
                              learner_id=learner, at="2021-01-04T09:00:00+08:00",
                              source="lms", external_id=f"reg-{learner}"))
        facts += [envelope("training.attended", {"program_id": f"P{i}", "kind": "thematic",
                                                 "hours": 8 + i, "leave_hours": 0},
                           learner_id=learner, source="lms", external_id=f"t{i}-{learner}")
                  for i in range(per_learner)]
    return facts


def validated(facts: list[dict]) -> list:
    """Envelopes as the application takes them (for writing straight to the store)."""
    return [incoming(f["type"], f["payload"], learner_id=f["learner_id"], source=f["source"],
                     external_id=f["external_id"], at=f["occurred_at"]) for f in facts]


def stored_count(world: KafkaWorld) -> int:
    ledger = build_ledger(world.settings)
    try:
        return ledger.recorder.max_notification_id() or 0
    finally:
        ledger.close()


def wait_for(condition, timeout: float = 60, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_good_facts_are_stored_once_and_bad_ones_dead_lettered(kafka_world):
    orgs = record_orgs(kafka_world)
    good = learner_facts(20)
    conflicting = good[1] | {"payload": good[1]["payload"] | {"hours": 99}}
    bad = [
        ("K00000", b'{"type": "training.attended", '),
        ("K00001", json.dumps(good[2] | {"colour": "red"}).encode()),
        ("L404", json.dumps(envelope("training.attended", {
            "program_id": "P", "kind": "thematic", "hours": 8, "leave_hours": 0},
            learner_id="L404", source="lms")).encode()),
        fact_message(conflicting),
    ]
    messages = [fact_message(f) for f in good] + bad + [fact_message(good[3])]  # a resend
    placed = kafka_world.produce(messages)

    done = kafka_world.cli("consume", "--until-idle", "3")
    assert done.returncode == 0, done.stdout + done.stderr
    assert stored_count(kafka_world) == orgs + len(good)
    ledger = build_ledger(kafka_world.settings)
    keys = ledger.fact_index.find_fact_keys(
        [fact_event_id(f["source"], f["external_id"]) for f in good])
    assert len(keys) == len(good)
    ledger.close()

    letters = kafka_world.read_all(kafka_world.settings.kafka_topic_dead_letters)
    assert len(letters) == len(bad)
    by_offset = {(int(dict(m.headers)["original.partition"]),
                  int(dict(m.headers)["original.offset"])): m for m in letters}
    expected_codes = ["malformed_json", "invalid_fact", "learner_not_registered", "conflict"]
    for where, code, (_, value) in zip(placed[len(good):], expected_codes, bad, strict=False):
        letter = by_offset[where]
        headers = dict(letter.headers)
        assert headers["error.code"].decode() == code
        assert headers["original.topic"].decode() == kafka_world.settings.kafka_topic_events
        assert len(headers["error.message"]) > 5
        assert letter.value == value
    assert dict(by_offset[placed[len(good) + 1]].headers)["error.field"] == b"colour"


def test_a_consumer_killed_mid_stream_loses_nothing_and_counts_nothing_twice(kafka_world):
    orgs = record_orgs(kafka_world)
    facts = learner_facts(300)
    kafka_world.produce([fact_message(f) for f in facts])
    small_batches = {"STUDYLEDGER_KAFKA_MAX_POLL_RECORDS": "50"}
    consumer = kafka_world.start("consume", **small_batches)
    wait_for(lambda: stored_count(kafka_world) > orgs + 200, what="some facts stored")
    consumer.send_signal(signal.SIGKILL)
    consumer.wait(timeout=10)
    partial = stored_count(kafka_world)
    assert partial < orgs + len(facts), "the consumer finished before it could be killed"

    done = kafka_world.cli("consume", "--until-idle", "3", **small_batches)
    assert done.returncode == 0, done.stderr
    assert stored_count(kafka_world) == orgs + len(facts)
    ledger = build_ledger(kafka_world.settings)
    for n in (0, 150, 299):  # each archive holds its facts once, in order
        assert len(ledger.facts_of(f"K{n:05d}")) == 5
    ledger.close()
    assert "duplicate" in done.stderr  # the redelivered tail answered duplicate


def test_two_consumers_in_one_group_share_the_partitions(kafka_world):
    orgs = record_orgs(kafka_world)
    facts = learner_facts(200)
    kafka_world.produce([fact_message(f) for f in facts])
    small_batches = {"STUDYLEDGER_KAFKA_MAX_POLL_RECORDS": "20"}
    first = kafka_world.start("consume", "--until-idle", "4", **small_batches)
    second = kafka_world.start("consume", "--until-idle", "4", **small_batches)
    assert first.wait(timeout=120) == 0 and second.wait(timeout=120) == 0
    assert stored_count(kafka_world) == orgs + len(facts)
    last_assignments = []
    for process in (first, second):
        log = process.log_path.read_text()
        assigned = [line.rsplit(": ", 1)[1] for line in log.splitlines()
                    if "partitions assigned" in line]
        assert assigned, log
        last_assignments.append(set(json.loads(assigned[-1])))
    assert all(last_assignments), f"a consumer ended with no partitions: {last_assignments}"
    assert last_assignments[0] | last_assignments[1] == {0, 1, 2, 3}
    assert not last_assignments[0] & last_assignments[1]


def test_sigterm_finishes_the_batch_commits_and_exits_zero(kafka_world):
    orgs = record_orgs(kafka_world)
    facts = learner_facts(40)
    kafka_world.produce([fact_message(f) for f in facts])
    consumer = kafka_world.start("consume")
    wait_for(lambda: stored_count(kafka_world) == orgs + len(facts), what="all stored")
    consumer.send_signal(signal.SIGTERM)
    assert consumer.wait(timeout=30) == 0
    settings = kafka_world.settings
    check = KafkaConsumer(bootstrap_servers=kafka_world.bootstrap,
                          group_id=settings.kafka_group_id, enable_auto_commit=False)
    partitions = [TopicPartition(settings.kafka_topic_events, p) for p in range(4)]
    # Every message produced (one per fact, nothing else on the topic) is committed past.
    assert sum(check.committed(tp) or 0 for tp in partitions) == len(facts)
    check.close()


def test_relay_publishes_every_recorded_fact_once_and_resumes_after_restart(kafka_world):
    orgs = record_orgs(kafka_world)
    ledger = build_ledger(kafka_world.settings)
    first = validated(learner_facts(10))
    ledger.record_facts(first, now=NOW, channel="t")
    assert kafka_world.cli("relay", "--once").returncode == 0
    more = validated(learner_facts(5, prefix="M"))
    ledger.record_facts(more, now=NOW, channel="t")
    ledger.close()
    again = kafka_world.cli("relay", "--once")
    assert again.returncode == 0, again.stderr

    published = kafka_world.read_all(kafka_world.settings.kafka_topic_recorded)
    total = orgs + len(first) + len(more)
    assert len(published) == total  # nothing skipped, nothing resent after a clean stop
    bodies = [json.loads(m.value) for m in published]
    assert sorted(b["position"] for b in bodies) == list(range(1, total + 1))
    for message, body in zip(published, bodies, strict=True):
        assert dict(message.headers)["event_id"].decode() == body["event_id"]
        expected_key = body["fact"]["learner_id"] or f"org:{body['fact']['payload']['org_id']}"
        assert message.key.decode() == expected_key
    assert {b["event_id"] for b in bodies} >= {str(f.event_id) for f in first + more}


def test_consume_without_kafka_configured_says_so(kafka_world):
    done = kafka_world.cli("consume", STUDYLEDGER_KAFKA_BOOTSTRAP="")
    assert done.returncode == 2
    assert "STUDYLEDGER_KAFKA_BOOTSTRAP" in done.stderr and "Traceback" not in done.stderr


def test_a_relay_killed_mid_stream_skips_nothing_and_resends_at_most_one_batch(kafka_world):
    from infra.relay_position import RelayPositionStore

    orgs = record_orgs(kafka_world)
    ledger = build_ledger(kafka_world.settings)
    facts = validated(learner_facts(600))
    for start in range(0, len(facts), 1000):
        ledger.record_facts(facts[start:start + 1000], now=NOW, channel="t")
    ledger.close()
    total = orgs + len(facts)
    positions = RelayPositionStore(kafka_world.settings, kafka_world.settings.kafka_topic_recorded)
    relay = kafka_world.start("relay", "--batch-size", "100")
    wait_for(lambda: positions.position() >= 500, what="the relay to pass position 500")
    relay.send_signal(signal.SIGKILL)
    relay.wait(timeout=10)
    stopped_at = positions.position()
    assert stopped_at < total, "the relay finished before it could be killed"
    done = kafka_world.cli("relay", "--once", "--batch-size", "100")
    assert done.returncode == 0, done.stderr
    assert positions.position() == total
    positions.close()
    published = [json.loads(m.value)["position"]
                 for m in kafka_world.read_all(kafka_world.settings.kafka_topic_recorded)]
    assert set(published) == set(range(1, total + 1))  # nothing skipped
    assert len(published) - total <= 100  # at most the one unconfirmed batch sent twice
