"""The composition root: the one place that turns settings into running objects."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import unquote, urlsplit

from domain.application import StudyLedger
from infra.fault_injection import fault_point_from
from infra.projector import Projector
from infra.runner_lease import runner_lease
from infra.settings import Settings, ensure_parent_dir, sqlite_path
from infra.sql_connection import connection_options, ensure_schema
from infra.store_errors import guard_event_store
from infra.view_store import ViewStore


def eventsourcing_env(settings: Settings) -> dict[str, str]:
    """The eventsourcing library's environment for the configured store."""
    env = {
        "AGGREGATE_CACHE_MAXSIZE": str(settings.aggregate_cache_size),
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
            "APPLICATION_RECORDER_TOPIC": "infra.persistence:SQLiteFactKeyRecorder",
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
        # How long a statement waits for a pooled connection: past it, StoreUnavailableError.
        # (Pooled connections are checked before use by infra.store_errors.)
        "POSTGRES_CONNECT_TIMEOUT": str(max(1, round(settings.store_timeout_seconds))),
        "APPLICATION_RECORDER_TOPIC": "infra.persistence:PostgresFactKeyRecorder",
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


def build_projector(settings: Settings, ledger: StudyLedger | None = None) -> Projector:
    return Projector(ledger or build_ledger(settings), build_views(settings),
                     batch_size=settings.projection_batch_size,
                     retry_max_seconds=settings.projection_retry_max_seconds,
                     fault_point=fault_point_from(settings.fault_kill_at),
                     lease=runner_lease(settings))
