"""Kafka ingestion, dead letters and the relay against a real broker, as processes."""

from __future__ import annotations

import contextlib
import json
import re
import signal
import sqlite3
import time
from datetime import UTC, datetime

import pytest
from kafka import KafkaConsumer, TopicPartition

from consumers.fault_points import (
    CONSUME_AFTER_DEAD_LETTERS_FLUSHED,
    CONSUME_AFTER_OFFSET_COMMIT,
    CONSUME_AFTER_STORE_COMMIT,
    RELAY_AFTER_BROKER_ACK,
    RELAY_AFTER_POSITION_STORED,
)
from domain.identity import fact_event_id
from infra.bench.broker import tansu_broker
from infra.bootstrap import build_ledger
from infra.store.sql_connection import sqlite_path
from tests.conftest import sqlite_settings
from tests.factories import REGISTRATION, envelope, incoming
from tests.integration.kafka.conftest import KafkaWorld, fact_message, our_tracebacks

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


def assert_each_learner_holds(world: KafkaWorld, facts: list[dict]) -> None:
    """Every learner's archive holds each of its facts exactly once."""
    expected: dict[str, set[str]] = {}
    for fact in facts:
        expected.setdefault(fact["learner_id"], set()).add(fact["external_id"])
    ledger = build_ledger(world.settings)
    try:
        for learner, external_ids in expected.items():
            held = [f.fact["external_id"] for f in ledger.facts_of(learner)]
            assert sorted(held) == sorted(external_ids), learner
    finally:
        ledger.close()


def final_counts(log: str) -> tuple[int, int]:
    """(stored, duplicate) of the last report line a `consume` process logged."""
    reports = re.findall(r"stored (\d+), duplicate (\d+)", log)
    assert reports, log
    return int(reports[-1][0]), int(reports[-1][1])


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
        ("K00002", json.dumps(envelope("training.attended", {
            "program_id": "P", "kind": "thematic", "hours": 8, "leave_hours": 0},
            learner_id="K00002", source="lms", at="2099-01-01T09:00:00+08:00")).encode()),
        fact_message(conflicting),
    ]
    # A learner not registered (yet) is a missing prerequisite: parked, not dead-lettered.
    waiting = ("L404", json.dumps(envelope("training.attended", {
        "program_id": "P", "kind": "thematic", "hours": 8, "leave_hours": 0},
        learner_id="L404", source="lms")).encode())
    messages = [fact_message(f) for f in good] + bad + [fact_message(good[3]), waiting]
    placed = kafka_world.produce(messages)

    done = kafka_world.cli("consume", "--until-idle", "3")
    assert done.returncode == 0, done.stdout + done.stderr
    assert stored_count(kafka_world) == orgs + len(good)
    ledger = build_ledger(kafka_world.settings)
    keys = ledger.fact_index.find_fact_keys(
        [fact_event_id(f["source"], f["external_id"]) for f in good])
    assert len(keys) == len(good)
    assert [p.waits_for for p in ledger.parked()] == ["learner:L404"]
    ledger.close()

    letters = kafka_world.read_all(kafka_world.settings.kafka_topic_dead_letters)
    assert len(letters) == len(bad)
    by_offset = {(int(dict(m.headers)["original.partition"]),
                  int(dict(m.headers)["original.offset"])): m for m in letters}
    expected_codes = ["malformed_json", "invalid_fact", "occurred_in_future", "conflict"]
    for where, code, (_, value) in zip(placed[len(good):], expected_codes, bad, strict=False):
        letter = by_offset[where]
        headers = dict(letter.headers)
        assert headers["error.code"].decode() == code
        assert headers["original.topic"].decode() == kafka_world.settings.kafka_topic_events
        assert len(headers["error.message"]) > 5
        assert letter.value == value
    assert dict(by_offset[placed[len(good) + 1]].headers)["error.field"] == b"colour"


@pytest.mark.parametrize("point", [CONSUME_AFTER_STORE_COMMIT, CONSUME_AFTER_DEAD_LETTERS_FLUSHED,
                                   CONSUME_AFTER_OFFSET_COMMIT])
def test_a_consumer_killed_at_each_step_loses_nothing_and_counts_nothing_twice(kafka_world,
                                                                               point):
    orgs = record_orgs(kafka_world)
    facts = learner_facts(100)
    messages, poison = [], []
    for n, fact in enumerate(facts):  # a poison message every 50 facts, on the learners' keys
        messages.append(fact_message(fact))
        if n % 50 == 25:
            poison.append(len(messages))
            messages.append((fact["learner_id"], b'{"type": '))
    placed = kafka_world.produce(messages)
    batches = {"STUDYLEDGER_KAFKA_MAX_POLL_RECORDS": "50"}

    victim = kafka_world.start("consume", STUDYLEDGER_FAULT_KILL_AT=f"{point}:3", **batches)
    assert victim.wait(timeout=120) == -signal.SIGKILL, victim.log_path.read_text()
    before = stored_count(kafka_world)
    assert orgs < before < orgs + len(facts)  # killed mid-stream, after some batches

    done = kafka_world.cli("consume", "--until-idle", "3", **batches)
    assert done.returncode == 0, done.stderr
    assert stored_count(kafka_world) == orgs + len(facts)
    assert_each_learner_holds(kafka_world, facts)
    stored, duplicate = final_counts(done.stderr)
    assert stored == orgs + len(facts) - before  # the restart stored only what was missing
    if point == CONSUME_AFTER_OFFSET_COMMIT:
        assert duplicate == 0  # the killed batch was committed: nothing is read again
    else:
        assert 0 < duplicate <= 50  # the one uncommitted batch, read again, all duplicates

    letters = kafka_world.read_all(kafka_world.settings.kafka_topic_dead_letters)
    origins = [(int(dict(m.headers)["original.partition"]),
                int(dict(m.headers)["original.offset"])) for m in letters]
    assert set(origins) == {placed[i] for i in poison}  # every poison message, nothing else
    if point == CONSUME_AFTER_DEAD_LETTERS_FLUSHED:
        assert len(origins) - len(poison) <= 50  # at most the killed batch's letters, twice
    else:
        assert len(origins) == len(poison)


def test_two_consumers_in_one_group_share_the_partitions(kafka_world):
    orgs = record_orgs(kafka_world)
    facts = learner_facts(200)
    kafka_world.produce([fact_message(f) for f in facts])
    small_batches = {"STUDYLEDGER_KAFKA_MAX_POLL_RECORDS": "20"}
    first = kafka_world.start("consume", "--until-idle", "6", **small_batches)
    second = kafka_world.start("consume", "--until-idle", "6", **small_batches)
    assert first.wait(timeout=120) == 0 and second.wait(timeout=120) == 0
    assert stored_count(kafka_world) == orgs + len(facts)
    assignments = []
    for process in (first, second):
        log = process.log_path.read_text()
        assigned = [frozenset(json.loads(line.rsplit(": ", 1)[1]))
                    for line in log.splitlines() if "partitions assigned" in line]
        assert assigned, log
        assignments.append(assigned)
    # While both were in the group they held disjoint halves. Which one leaves first is up
    # to the clock (the other then takes every partition), so no particular last assignment
    # is asked for: only that some generation split the partitions between them.
    everything = frozenset({0, 1, 2, 3})
    assert any(a and b and not a & b and a | b == everything
               for a in assignments[0] for b in assignments[1]), assignments


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


@pytest.mark.parametrize("point", [RELAY_AFTER_BROKER_ACK, RELAY_AFTER_POSITION_STORED])
def test_a_relay_killed_at_each_step_skips_nothing_and_resends_at_most_one_batch(kafka_world,
                                                                                 point):
    from infra.store.relay_position import RelayPositionStore

    orgs = record_orgs(kafka_world)
    ledger = build_ledger(kafka_world.settings)
    ledger.record_facts(validated(learner_facts(100)), now=NOW, channel="t")
    ids = [n.id for n in ledger.recorder.select_notifications(start=1, limit=10_000)]
    ledger.close()
    assert len(ids) == orgs + 500
    positions = RelayPositionStore(kafka_world.settings, kafka_world.settings.kafka_topic_recorded)

    victim = kafka_world.start("relay", "--batch-size", "100",
                               STUDYLEDGER_FAULT_KILL_AT=f"{point}:3")
    assert victim.wait(timeout=120) == -signal.SIGKILL, victim.log_path.read_text()
    confirmed = 2 if point == RELAY_AFTER_BROKER_ACK else 3  # batches whose position is stored
    assert positions.position() == ids[confirmed * 100 - 1]

    done = kafka_world.cli("relay", "--once", "--batch-size", "100")
    assert done.returncode == 0, done.stderr
    assert positions.position() == ids[-1]
    positions.close()
    published = [json.loads(m.value)["position"]
                 for m in kafka_world.read_all(kafka_world.settings.kafka_topic_recorded)]
    assert set(published) == set(ids), sorted(set(ids) - set(published))  # nothing skipped
    resent = sorted(p for p in set(published) if published.count(p) > 1)
    if point == RELAY_AFTER_BROKER_ACK:
        assert resent == ids[200:300]  # exactly the acked but unconfirmed batch, once more
    else:
        assert resent == []
    assert len(published) == len(ids) + len(resent)


def test_a_relay_waits_out_a_locked_store_and_then_publishes_everything(broker, tmp_path):
    """SQLite's store goes away by being locked by another writer (PostgreSQL's restart is in
    tests/e2e/test_store_outage.py). The relay is frozen while facts are recorded and the
    file is locked, so that it meets the lock when it stores the position of its next batch."""
    from infra.store.relay_position import RelayPositionStore

    world = KafkaWorld(sqlite_settings(tmp_path), broker, tmp_path)
    assert world.cli("topics", "create", "--partitions", "4").returncode == 0
    record_orgs(world)
    ledger = build_ledger(world.settings)
    ledger.record_facts(validated(learner_facts(20)), now=NOW, channel="t")
    positions = RelayPositionStore(world.settings, world.settings.kafka_topic_recorded)
    relay = world.start("relay", "--poll", "0.1", "--batch-size", "50",
                        STUDYLEDGER_STORE_TIMEOUT_SECONDS="1")
    try:
        before = stored_count(world)
        wait_for(lambda: positions.position() == before, what="the relay catching up")
        relay.send_signal(signal.SIGSTOP)
        ledger.record_facts(validated(learner_facts(20, prefix="M")), now=NOW, channel="t")
        end = stored_count(world)
        lock = sqlite3.connect(sqlite_path(world.settings.database_url), isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")  # another writer holds the file
        relay.send_signal(signal.SIGCONT)
        wait_for(lambda: relay.poll() is not None
                 or "store unavailable" in relay.log_path.read_text(),
                 what="the relay meeting the locked store")
        assert relay.poll() is None, relay.log_path.read_text()  # waiting, not gone
        lock.execute("ROLLBACK")
        lock.close()
        wait_for(lambda: positions.position() == end, what="the relay going on after")
        assert relay.poll() is None, relay.log_path.read_text()
    finally:
        relay.send_signal(signal.SIGCONT)
        relay.terminate()
        relay.wait(timeout=30)
        positions.close()
        ledger.close()
    log = relay.log_path.read_text()
    assert relay.returncode == 0 and "Traceback" not in log, log
    assert "store back" in log, log
    published = [json.loads(m.value)["position"]
                 for m in world.read_all(world.settings.kafka_topic_recorded)]
    assert set(published) == set(range(1, end + 1))  # nothing skipped
    # Published again: at most the batches in hand while the store was locked.
    resent = {p for p in published if published.count(p) > 1}
    assert resent <= set(range(before + 1, end + 1)), sorted(resent)


def test_a_relay_waits_out_a_broker_restart_and_publishes_what_came_meanwhile(tmp_path):
    """The broker stopped under the relay and started again on its port, empty (Tansu keeps
    its topics in memory). Facts recorded meanwhile reach the new broker; the relay does not
    exit, and its producer (whose id the new broker does not know) is replaced."""
    from infra.store.relay_position import RelayPositionStore

    first = contextlib.ExitStack()
    world = KafkaWorld(sqlite_settings(tmp_path), first.enter_context(tansu_broker()), tmp_path)
    port = int(world.bootstrap.rsplit(":", 1)[1])
    assert world.cli("topics", "create", "--partitions", "2").returncode == 0
    record_orgs(world)
    ledger = build_ledger(world.settings)
    ledger.record_facts(validated(learner_facts(5)), now=NOW, channel="t")
    positions = RelayPositionStore(world.settings, world.settings.kafka_topic_recorded)
    relay = world.start("relay", "--poll", "0.1", STUDYLEDGER_KAFKA_PUBLISH_TIMEOUT_SECONDS="2")
    try:
        before = stored_count(world)
        wait_for(lambda: positions.position() == before, what="the relay catching up")
        first.close()  # the broker goes away, and its topics with it
        ledger.record_facts(validated(learner_facts(5, prefix="M")), now=NOW, channel="t")
        end = stored_count(world)
        wait_for(lambda: relay.poll() is not None
                 or "broker unavailable" in relay.log_path.read_text(),
                 what="the relay meeting the stopped broker")
        assert relay.poll() is None, relay.log_path.read_text()  # waiting, not gone
        assert positions.position() == before  # nothing confirmed that was not acknowledged
        with tansu_broker(port):
            assert world.cli("topics", "create", "--partitions", "2").returncode == 0
            wait_for(lambda: positions.position() == end, what="the relay going on after")
            assert relay.poll() is None, relay.log_path.read_text()
            published = [json.loads(m.value)["position"]
                         for m in world.read_all(world.settings.kafka_topic_recorded)]
    finally:
        relay.terminate()
        relay.wait(timeout=30)
        positions.close()
        ledger.close()
        first.close()
    log = relay.log_path.read_text()
    assert relay.returncode == 0 and not our_tracebacks(log), log
    assert "broker back" in log, log
    # The new broker holds every fact recorded while it was away.
    assert set(published) == set(range(before + 1, end + 1))
