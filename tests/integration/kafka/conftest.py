"""A real Kafka-protocol broker per test (infra.bench.broker: Tansu, in memory, on a free
loopback port). It does not auto-create topics, so tests create them with `studyledger topics
create`, and it answers a group join after session_timeout / 2, so the consumers here run
with a 2000 ms session and 500 ms heartbeats."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from infra.bench.broker import BrokerUnavailableError, free_port, tansu_broker
from infra.settings import Settings


def _free_port() -> int:  # tests/deploy takes its ports from here
    return free_port()


@pytest.fixture
def broker() -> Iterator[str]:
    try:
        with tansu_broker() as bootstrap:
            yield bootstrap
    except BrokerUnavailableError as exc:
        pytest.fail(str(exc))


@dataclass
class KafkaWorld:
    """A store and a broker, and the environment every `studyledger` process gets."""

    settings: Settings
    bootstrap: str
    tmp: Path

    def env(self, **extra: str) -> dict[str, str]:
        return os.environ | {
            "STUDYLEDGER_DATABASE_URL": self.settings.database_url,
            "STUDYLEDGER_DATABASE_SCHEMA": self.settings.database_schema,
            "STUDYLEDGER_KAFKA_BOOTSTRAP": self.bootstrap,
            "STUDYLEDGER_KAFKA_SESSION_TIMEOUT_MS": "2000",
            "STUDYLEDGER_KAFKA_HEARTBEAT_INTERVAL_MS": "500",
            "STUDYLEDGER_KAFKA_REPORT_SECONDS": "1",
        } | extra

    def cli(self, *args: str, timeout: float = 120, **extra: str
            ) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "infra.cli", *args], env=self.env(**extra),
                              capture_output=True, text=True, timeout=timeout, cwd=self.tmp)

    def start(self, *args: str, **extra: str) -> subprocess.Popen[str]:
        """A background `studyledger` process; its output goes to `process.log_path`."""
        log_path = self.tmp / f"{args[0]}-{time.monotonic_ns()}.log"
        with open(log_path, "w") as log:
            process = subprocess.Popen([sys.executable, "-m", "infra.cli", *args],
                                       env=self.env(**extra), stdout=log,
                                       stderr=subprocess.STDOUT, text=True, cwd=self.tmp)
        process.log_path = log_path  # type: ignore[attr-defined]
        return process

    def produce(self, messages: list[tuple[str | None, bytes]]) -> list[tuple[int, int]]:
        """Send (key, value) pairs to the events topic; (partition, offset) of each."""
        producer = KafkaProducer(bootstrap_servers=self.bootstrap, acks="all")
        futures = [producer.send(self.settings.kafka_topic_events,
                                 key=key.encode() if key else None, value=value)
                   for key, value in messages]
        producer.flush()
        placed = [(f.get(10).partition, f.get(10).offset) for f in futures]
        producer.close()
        return placed

    def read_all(self, topic: str) -> list:
        return read_topic(self.bootstrap, topic)


def read_topic(bootstrap: str, topic: str) -> list:
    """Every message of a topic, from the start, without a group.

    The end of each partition is the high watermark of the fetch responses: Tansu's
    ListOffsets (`end_offsets`) can answer short of the log end, inside the last record
    batch, and reading up to it would miss that batch's tail."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    messages = []
    deadline = time.monotonic() + 30

    def at_end(tp: TopicPartition) -> bool:
        end = consumer.highwater(tp)  # None until a fetch for the partition answered
        return end is not None and consumer.position(tp) >= end

    while not all(at_end(tp) for tp in partitions):
        assert time.monotonic() < deadline, "could not read the topic to its end"
        for batch in consumer.poll(timeout_ms=500).values():
            messages.extend(batch)
    consumer.close()
    return messages


def our_tracebacks(log: str) -> list[str]:
    """The frames of this project's code in the tracebacks a process logged. kafka-python
    logs a traceback of its own when a broker resets a connection: that is the library's
    account of an outage, not a failure of ours."""
    return re.findall(r'File "[^"]*/(?:domain|projections|api|consumers|infra)/[^"]*"', log)


def fact_message(fact: dict) -> tuple[str | None, bytes]:
    return fact.get("learner_id"), json.dumps(fact, ensure_ascii=False).encode()


@pytest.fixture
def kafka_world(broker: str, store_settings: Settings, tmp_path: Path) -> KafkaWorld:
    world = KafkaWorld(store_settings, broker, tmp_path)
    made = world.cli("topics", "create", "--partitions", "4")
    assert made.returncode == 0, made.stderr
    return world
