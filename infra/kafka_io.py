"""kafka-python adapters for the consumers' loops, and topic administration.

Every setting comes from `Settings` (STUDYLEDGER_KAFKA_*), so the same code runs against
Apache Kafka and against the Tansu broker the tests start.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import CommitFailedError, KafkaError, TopicAlreadyExistsError
from kafka.structs import OffsetAndMetadata

from consumers.ingest_loop import DeadLetter, InboundMessage
from consumers.relay import PublishFailedError
from infra.settings import Settings

log = logging.getLogger("studyledger.kafka")


class KafkaSetupError(RuntimeError):
    """Kafka is not configured or not reachable."""


def bootstrap_servers(settings: Settings) -> list[str]:
    if not settings.kafka_bootstrap:
        raise KafkaSetupError("no Kafka configured: set STUDYLEDGER_KAFKA_BOOTSTRAP=host:port")
    return [server.strip() for server in settings.kafka_bootstrap.split(",") if server.strip()]


def create_topics(settings: Settings, partitions: int, replication: int) -> list[str]:
    """Create the three topics; returns a line per topic saying what happened."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers(settings),
                             client_id=settings.kafka_client_id)
    report = []
    try:
        for name in (settings.kafka_topic_events, settings.kafka_topic_dead_letters,
                     settings.kafka_topic_recorded):
            try:
                admin.create_topics([NewTopic(name, partitions, replication)])
                report.append(f"created {name} ({partitions} partitions)")
            except TopicAlreadyExistsError:
                report.append(f"exists  {name}")
    finally:
        admin.close()
    return report


def broker_topics(settings: Settings, timeout_ms: int = 5000) -> set[str]:
    """The topics the broker holds; raises KafkaError when it cannot be reached in time."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers(settings),
                             client_id=settings.kafka_client_id, request_timeout_ms=timeout_ms,
                             bootstrap_timeout_ms=timeout_ms)
    try:
        return set(admin.list_topics())
    finally:
        admin.close()


class KafkaMessageSource:
    """A consumer-group member on the events topic; offsets are committed only by hand."""

    def __init__(self, settings: Settings, client_id: str) -> None:
        self.topic = settings.kafka_topic_events
        self.max_records = settings.kafka_max_poll_records
        # A commit the broker does not answer within this is given up (see commit); it
        # would otherwise hold the loop for the client's default 30 s.
        self.commit_timeout_ms = max(settings.kafka_session_timeout_ms, 5000)
        self.consumer = KafkaConsumer(
            self.topic, bootstrap_servers=bootstrap_servers(settings),
            group_id=settings.kafka_group_id, client_id=client_id,
            enable_auto_commit=False, auto_offset_reset="earliest",
            session_timeout_ms=settings.kafka_session_timeout_ms,
            heartbeat_interval_ms=settings.kafka_heartbeat_interval_ms,
            max_poll_records=settings.kafka_max_poll_records)

    def poll(self, wait: bool = True) -> list[InboundMessage]:
        records = self.consumer.poll(timeout_ms=500 if wait else 0,
                                     max_records=self.max_records)
        return [InboundMessage(r.topic, r.partition, r.offset, r.key, r.value)
                for batch in records.values() for r in batch]

    def commit(self, next_offsets: dict[tuple[str, int], int]) -> None:
        try:
            self.consumer.commit({TopicPartition(topic, partition): OffsetAndMetadata(
                offset, "", -1) for (topic, partition), offset in next_offsets.items()},
                timeout_ms=self.commit_timeout_ms)
        except CommitFailedError as exc:
            # The group rebalanced mid-batch. The batch is stored; its new owner reads it
            # again and idempotency makes every fact a duplicate.
            log.warning("offset commit refused after a rebalance: %s", exc)
        except KafkaError as exc:
            # The broker went away after the batch was stored and its dead letters acked.
            # Nothing is lost: the next commit covers these offsets too, or, if the consumer
            # stops first, the batch is read again and its facts count as duplicates.
            log.warning("offset commit failed, the broker did not answer (%s: %s); the "
                        "batch is stored and a later commit covers it", type(exc).__name__,
                        exc)

    def assignment(self) -> list[int]:
        return sorted(tp.partition for tp in self.consumer.assignment())

    def lag(self) -> int | None:
        partitions = list(self.consumer.assignment())
        if not partitions:
            return None
        try:
            ends = self.consumer.end_offsets(partitions)
            return sum(max(0, int(ends[tp]) - int(self.consumer.position(tp)))
                       for tp in partitions)
        except KafkaError:
            return None

    def partition_lags(self) -> dict[tuple[str, int], int]:
        """Messages behind the end, per assigned partition; empty when the broker does not
        answer (the gauge keeps its last values)."""
        partitions = list(self.consumer.assignment())
        try:
            ends = self.consumer.end_offsets(partitions) if partitions else {}
            return {(tp.topic, tp.partition): max(0, ends[tp] - self.consumer.position(tp))
                    for tp in partitions}
        except KafkaError:
            return {}

    def close(self) -> None:
        self.consumer.close(autocommit=False)


class _AckedProducer:
    """Sends and remembers the futures, so flush can say whether every send was acked.

    A failure to send, or to be acknowledged, is PublishFailedError, after which the next
    send goes through a new producer: an idempotent producer's id dies with a broker that
    restarts without its state (UnknownProducerIdError), and the old one cannot recover.
    The waits (for a topic's metadata in send, for the acks in flush) are bounded by
    STUDYLEDGER_KAFKA_PUBLISH_TIMEOUT_SECONDS."""

    def __init__(self, settings: Settings, client_id: str) -> None:
        timeout_ms = int(settings.kafka_publish_timeout_seconds * 1000)
        self._timeout = settings.kafka_publish_timeout_seconds
        self._options = {"bootstrap_servers": bootstrap_servers(settings),
                         "client_id": client_id, "acks": "all", "retries": 5,
                         "linger_ms": 5, "max_block_ms": timeout_ms,
                         "delivery_timeout_ms": timeout_ms,
                         "request_timeout_ms": min(30_000, timeout_ms - 10)}
        self.producer = KafkaProducer(**self._options)
        self._pending: list[Any] = []
        self._broken = False

    def _send(self, topic: str, key: bytes | None, value: bytes,
              headers: list[tuple[str, bytes]]) -> None:
        with self._failures():
            if self._broken:
                self.producer = KafkaProducer(**self._options)
                self._broken = False
            self._pending.append(self.producer.send(topic, key=key, value=value,
                                                    headers=headers))

    def flush(self) -> None:
        with self._failures():
            self.producer.flush()
            pending, self._pending = self._pending, []
            for future in pending:
                future.get(timeout=self._timeout)  # raises the send's error, if it failed

    @contextlib.contextmanager
    def _failures(self) -> Iterator[None]:
        try:
            yield
        except KafkaError as exc:
            self._pending, self._broken = [], True
            with contextlib.suppress(Exception):  # it is being given up
                self.producer.close(timeout=0)
            raise PublishFailedError(f"{type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        self.producer.close()


class KafkaDeadLetterSink(_AckedProducer):
    def __init__(self, settings: Settings, client_id: str) -> None:
        super().__init__(settings, client_id)
        self.topic = settings.kafka_topic_dead_letters

    def send(self, letter: DeadLetter) -> None:
        original = letter.message
        headers = [
            ("error.code", letter.code.encode()),
            ("error.message", letter.reason.encode()),
            ("error.field", (letter.field or "").encode()),
            ("original.topic", original.topic.encode()),
            ("original.partition", str(original.partition).encode()),
            ("original.offset", str(original.offset).encode()),
        ]
        self._send(self.topic, original.key, original.value or b"", headers)


class KafkaPublisher(_AckedProducer):
    """The relay's producer (see _AckedProducer for what a failure does)."""

    def __init__(self, settings: Settings, client_id: str) -> None:
        super().__init__(settings, client_id)
        self.topic = settings.kafka_topic_recorded

    def publish(self, key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        self._send(self.topic, key, value, headers)


def read_dead_letters(settings: Settings, client_id: str) -> list[InboundMessage]:
    """Every message of the dead-letter topic, start to end, without a consumer group; each
    as the original message (its topic, partition and offset from the letter's headers)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers(settings),
                             client_id=client_id, enable_auto_commit=False)
    try:
        topic = settings.kafka_topic_dead_letters
        partitions = [TopicPartition(topic, p)
                      for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not partitions:
            return []
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        letters: list[InboundMessage] = []

        def at_end(tp: TopicPartition) -> bool:
            # The high watermark of a fetch answer, once there is one: some brokers (Tansu)
            # answer ListOffsets short of the log end, inside the last record batch.
            end = consumer.highwater(tp)
            end = ends[tp] if end is None and ends[tp] == 0 else end
            return end is not None and consumer.position(tp) >= end

        deadline = time.monotonic() + 60
        while not all(at_end(tp) for tp in partitions):
            if time.monotonic() > deadline:
                raise KafkaSetupError(f"could not read {topic} to its end within 60 s")
            for records in consumer.poll(timeout_ms=1000).values():
                for record in records:
                    headers = {k: v.decode("utf-8", "replace") for k, v in record.headers}
                    letters.append(InboundMessage(
                        headers.get("original.topic", settings.kafka_topic_events),
                        int(headers.get("original.partition", -1)),
                        int(headers.get("original.offset", -1)), record.key, record.value))
        return letters
    finally:
        consumer.close()
