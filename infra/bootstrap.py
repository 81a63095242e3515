"""The composition root: the one place that turns settings into running objects."""

from __future__ import annotations

import os
import signal
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from domain.application import AGGREGATE_CACHE_MAX_FACTS, StudyLedger
from infra.ops.fault_injection import fault_point_from
from infra.settings import Settings, ensure_parent_dir, sqlite_path
from infra.store.errors import guard_event_store
from infra.store.runner_lease import runner_lease
from infra.store.sql_connection import connection_options, ensure_schema
from infra.views.writer import ViewStore
from projections.ports import ReadViews, RunnerLease, ViewWriter
from projections.runner import Projector

if TYPE_CHECKING:  # the Kafka and HTTP sides are imported only by the commands that use them
    from api.auth import KeyLookup
    from api.services import CertificateRegister, Services
    from consumers.ingest_loop import DeadLetterSink, IngestLoop
    from consumers.relay import RelayLoop
    from infra.kafka_io import KafkaMessageSource, KafkaPublisher
    from infra.kafka_validation import PooledMessageValidation
    from infra.ops.metrics import CountingDeadLetters, KafkaIngestMeter
    from infra.store.relay_position import RelayPositionStore
    from infra.xapi.lrs import SqlLrs


def eventsourcing_env(settings: Settings) -> dict[str, str]:
    """The eventsourcing library's environment for the configured store."""
    env = {
        "AGGREGATE_CACHE_MAXSIZE": str(settings.aggregate_cache_size),
        AGGREGATE_CACHE_MAX_FACTS: str(settings.aggregate_cache_facts),
        # No per-aggregate fast-forward: the write path checks the whole batch's cached
        # archives against the store in one query and evicts stale ones. No deep copies:
        # the write lock and eviction on failure keep the cache clean.
        "AGGREGATE_CACHE_FASTFORWARD": "n",
        "DEEPCOPY_FROM_AGGREGATE_CACHE": "n",
    }
    if settings.is_sqlite:
        path = sqlite_path(settings.database_url)
        ensure_parent_dir(path)
        return env | {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": path,
            # A file another writer keeps locked longer than this is StoreUnavailableError.
            "SQLITE_LOCK_TIMEOUT": str(max(1, round(settings.store_timeout_seconds))),
            "APPLICATION_RECORDER_TOPIC": "infra.store.recorders:SQLiteFactKeyRecorder",
        }
    ensure_schema(settings)
    url = urlsplit(settings.database_url)
    return env | {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": unquote(url.path.lstrip("/")) or "postgres",
        "POSTGRES_HOST": url.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(url.port or 5432),
        "POSTGRES_USER": unquote(url.username or "postgres"),
        "POSTGRES_PASSWORD": unquote(url.password or ""),
        "POSTGRES_SCHEMA": settings.database_schema,
        "POSTGRES_POOL_SIZE": str(settings.postgres_pool_size),
        # How long a statement waits for a pooled connection: past it, StoreUnavailableError.
        # (Pooled connections are checked before use by infra.store.errors.)
        "POSTGRES_CONNECT_TIMEOUT": str(max(1, round(settings.store_timeout_seconds))),
        "APPLICATION_RECORDER_TOPIC": "infra.store.recorders:PostgresFactKeyRecorder",
    }


def build_ledger(settings: Settings | None = None) -> StudyLedger:
    settings = settings or Settings()
    ledger = StudyLedger(env=eventsourcing_env(settings),
                         park_timeout=timedelta(seconds=settings.park_timeout_seconds))
    guard_event_store(getattr(ledger.recorder, "datastore", None),
                      timeout=settings.store_timeout_seconds,
                      options=connection_options(settings))
    return ledger


def build_views(settings: Settings | None = None) -> ViewStore:
    return ViewStore(settings or Settings())


def build_projector(settings: Settings, ledger: StudyLedger | None = None, *,
                    views: ViewWriter | None = None,
                    lease: RunnerLease | None = None) -> Projector:
    return Projector(ledger or build_ledger(settings),
                     views if views is not None else build_views(settings),
                     batch_size=settings.projection_batch_size,
                     retry_max_seconds=settings.projection_retry_max_seconds,
                     fault_point=fault_point_from(settings.fault_kill_at),
                     lease=lease if lease is not None else runner_lease(settings))


def build_read_views(settings: Settings, ledger: StudyLedger | None = None, *,
                     sealed_cursors: bool = True) -> ReadViews:
    """The one read side, for the API (cursors sealed) and the CLI (the views' own)."""
    from infra.views.reads import SqlReadViews

    return SqlReadViews(settings, ledger or build_ledger(settings),
                        sealed_cursors=sealed_cursors)


def build_services(settings: Settings, ledger: StudyLedger | None = None, *,
                   views: ReadViews | None = None, keys: KeyLookup | None = None,
                   certificates: CertificateRegister | None = None) -> Services:
    """What the HTTP API needs: the ledger, its reads, keys, certificates, metrics, audit."""
    from api.services import Services
    from infra.files.jsonl_ingest import utc_now
    from infra.ops.metrics_wiring import api_observability
    from infra.store.certificates import CertificateStore
    from infra.store.keys import KeyStore
    from infra.store.read_audit import ReadAuditStore

    ledger = ledger or build_ledger(settings)
    reads = views if views is not None else build_read_views(settings, ledger)
    services = Services(
        ledger=ledger, views=reads,
        keys=keys if keys is not None else KeyStore(settings), clock=utc_now,
        store_name="sqlite" if settings.is_sqlite else "postgresql",
        max_batch_facts=settings.api_max_batch_facts,
        max_body_bytes=settings.api_max_body_bytes,
        wait_timeout_seconds=settings.api_wait_timeout_seconds,
        certificates=certificates if certificates is not None else CertificateStore(settings),
        public_base_url=settings.public_base_url, read_audit=ReadAuditStore(settings),
        # The xAPI LRS under /xapi; it reads the org tree for auditors' subtrees.
        lrs=build_lrs(settings, org_tree=lambda: [(row[0], row[2]) for row in
                                                  reads.org_table()], ledger=ledger))
    return api_observability(services)


def xapi_env(settings: Settings) -> dict[str, str]:
    """The xAPI statement log's environment: the same store, its own event table."""
    env = eventsourcing_env(settings)
    env.pop("APPLICATION_RECORDER_TOPIC", None)  # the learner facts' recorder, not its
    if settings.is_sqlite:  # eventsourcing names every SQLite application's table alike
        env["APPLICATION_RECORDER_TOPIC"] = "infra.xapi.lrs:XapiSQLiteRecorder"
    return env


def build_lrs(settings: Settings, *, ledger: StudyLedger | None = None,
              org_tree: Callable[[], list[tuple[str, str | None]]] | None = None,
              clock: Callable[[], datetime] | None = None) -> SqlLrs:
    """The xAPI LRS: statements, their query tables, documents; with the ledger, the bridge
    (when STUDYLEDGER_XAPI_MAPPING names a mapping) turns statements into learner facts."""
    from infra.xapi.lrs import SqlLrs

    return SqlLrs(settings, env=xapi_env(settings), org_tree=org_tree, clock=clock,
                  ledger=ledger)


def stop_on_signals() -> threading.Event:
    """The process's stop: SIGTERM and SIGINT set it, so the batch in hand finishes first.

    Signal handlers belong to the process, so every long-running command takes this one.
    `serve` needs it too: uvicorn re-raises the signal it shut down on, and setting an event
    turns that into a normal return (exit 0) instead of death by signal."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    return stop


def kafka_client_id(settings: Settings, role: str) -> str:
    """How the broker tells this process apart: role, host and pid."""
    return f"{settings.kafka_client_id}-{role}-{socket.gethostname()}-{os.getpid()}"


@dataclass
class KafkaIngest:
    """`consume`: the ingest loop, its two Kafka ends and the meter of its progress."""

    loop: IngestLoop
    source: KafkaMessageSource
    dead_letters: CountingDeadLetters
    meter: KafkaIngestMeter
    client_id: str
    validation: PooledMessageValidation | None = None

    def close(self) -> None:
        self.source.close()
        self.dead_letters.close()
        if self.validation is not None:
            self.validation.close()


def build_ingest(settings: Settings, ledger: StudyLedger | None = None, *,
                 stop: threading.Event | None = None,
                 source: KafkaMessageSource | None = None,
                 dead_letters: DeadLetterSink | None = None) -> KafkaIngest:
    """Kafka -> the store. Waits for the store are cut short by `stop` (the batch in hand
    stays uncommitted)."""
    from consumers.ingest_loop import IngestLoop
    from infra.files.jsonl_ingest import utc_now
    from infra.kafka_io import KafkaDeadLetterSink, KafkaMessageSource
    from infra.kafka_validation import PooledMessageValidation
    from infra.ops.metrics import CountingDeadLetters, KafkaIngestMeter
    from infra.validation_pool import spare_cores

    stop = stop if stop is not None else threading.Event()
    client_id = kafka_client_id(settings, "consume")
    source = source if source is not None else KafkaMessageSource(settings, client_id)
    try:
        letters = CountingDeadLetters(dead_letters if dead_letters is not None
                                      else KafkaDeadLetterSink(settings, client_id))
    except Exception:
        source.close()  # built again when the broker answers (cli: wait_until_answering)
        raise
    workers = settings.kafka_validate_workers
    workers = spare_cores() if workers is None else workers
    validation = PooledMessageValidation(workers) if workers > 0 else None
    loop = IngestLoop(ledger or build_ledger(settings), source, letters, clock=utc_now,
                      retries=settings.kafka_store_retries, sleep=stop.wait,
                      stopping=stop.is_set, fault_point=fault_point_from(settings.fault_kill_at),
                      validation=validation)
    meter = KafkaIngestMeter(loop.stats, source.partition_lags)
    return KafkaIngest(loop, source, letters, meter, client_id, validation)


@dataclass
class KafkaRelay:
    """`relay`: the relay loop, its publisher and the position it stores."""

    loop: RelayLoop
    publisher: KafkaPublisher
    positions: RelayPositionStore

    def close(self) -> None:
        self.publisher.close()
        self.positions.close()


def build_relay(settings: Settings, ledger: StudyLedger | None = None, *, batch_size: int = 1000,
                publisher: KafkaPublisher | None = None,
                positions: RelayPositionStore | None = None) -> KafkaRelay:
    """The store -> `studyledger.recorded`, the position stored after the broker's acks."""
    from consumers.relay import RelayLoop
    from infra.kafka_io import KafkaPublisher
    from infra.store.relay_position import RelayPositionStore

    if publisher is None:
        publisher = KafkaPublisher(settings, kafka_client_id(settings, "relay"))
    if positions is None:
        try:
            positions = RelayPositionStore(settings, settings.kafka_topic_recorded)
        except Exception:
            publisher.close()  # built again when the store answers
            raise
    loop = RelayLoop(ledger or build_ledger(settings), publisher, positions,
                     batch_size=batch_size, fault_point=fault_point_from(settings.fault_kill_at))
    return KafkaRelay(loop, publisher, positions)
