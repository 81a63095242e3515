"""All configuration, in one place: environment variables prefixed STUDYLEDGER_."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from infra.ops.fault_injection import parse_kill_at


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STUDYLEDGER_", extra="ignore")

    # sqlite:///relative/path.db, sqlite:////absolute/path.db or postgresql://user@host/db
    database_url: str = "sqlite:///./var/studyledger.db"
    # PostgreSQL schema holding the tables (lets several stores share one database).
    database_schema: str = "public"
    batch_size: int = Field(default=1000, ge=1, le=10_000)
    # PostgreSQL connections each process keeps open for the event store; more are opened
    # when needed (up to 10 over this) and closed again after 10 idle minutes. Every process
    # (API worker, consumer, runner) holds these, so they count against max_connections.
    postgres_pool_size: int = Field(default=2, ge=1, le=100)
    # Learner and org archives kept in memory between batches: at most this many, holding
    # at most aggregate_cache_facts facts between them. An archive indexes its facts (~270
    # bytes each), so the facts bound the memory: 1.5M is ~400 MiB at most, and a district
    # of a million facts stays cached whole (a smaller cache makes its ingest reread
    # archives every batch: 12:13 instead of 3:05).
    aggregate_cache_size: int = Field(default=50_000, ge=0)
    aggregate_cache_facts: int = Field(default=1_500_000, ge=1)
    # Facts per projection transaction: large batches catch up much faster (each batch
    # recomputes the learners it touches); small ones make each write visible sooner.
    projection_batch_size: int = Field(default=20_000, ge=1, le=1_000_000)
    # A fact whose prerequisite (learner, org, submission, void target) is not recorded yet
    # is parked; still waiting after this long, it becomes a dead letter with its reason.
    park_timeout_seconds: float = Field(default=86_400, gt=0)
    # How long anything waits for the database (a connection, a pooled connection) before
    # giving up with StoreUnavailableError: HTTP answers 503, the loops wait and try again.
    store_timeout_seconds: float = Field(default=5.0, ge=1, le=300)
    # A fact the projection runner cannot project stalls it there (never skipped): it is
    # tried again with a backoff doubling up to this, and /health says stalled meanwhile.
    projection_retry_max_seconds: float = Field(default=30.0, gt=0, le=3600)
    # Kafka: bootstrap servers ("host:port,host:port"); the consumers refuse to start without.
    kafka_bootstrap: str | None = None
    kafka_topic_events: str = "studyledger.events"
    kafka_topic_dead_letters: str = "studyledger.events.dlq"
    kafka_topic_recorded: str = "studyledger.recorded"
    kafka_group_id: str = "studyledger-ingest"
    kafka_client_id: str = "studyledger"
    # Group timeouts: the client's defaults suit Apache Kafka; tests use 2000 / 500.
    kafka_session_timeout_ms: int = Field(default=10_000, ge=1000)
    kafka_heartbeat_interval_ms: int = Field(default=3_000, ge=100)
    kafka_max_poll_records: int = Field(default=1000, ge=1, le=100_000)
    # Store errors: attempts per batch before `consume` gives up and exits 4 (backoff doubles
    # from 0.5 s up to 5 s). 0: never give up; wait for the store and resume (the default:
    # a restarting database should not need the consumers restarted too).
    kafka_store_retries: int = Field(default=0, ge=0, le=1000)
    # Worker processes validating the next polled batch while `consume` stores the one in
    # hand (unset: one per core beyond the consumer's; 0: validate in the consumer).
    kafka_validate_workers: int | None = Field(default=None, ge=0, le=64)
    # How long `relay` gives the broker to take and acknowledge a batch before it counts as
    # unavailable: the relay then waits and publishes the batch again.
    kafka_publish_timeout_seconds: float = Field(default=30.0, ge=1, le=600)
    # How often `consume` and `relay` log their rate and lag.
    kafka_report_seconds: float = Field(default=10.0, gt=0)
    # `consume`, `relay` and `project` serve their Prometheus metrics on this port (off when
    # unset); `serve` has them at /metrics on the API's own port.
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    metrics_host: str = "127.0.0.1"

    # HTTP API (`studyledger serve`, `make run`).
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=0, le=65535)
    api_workers: int = Field(default=1, ge=1, le=64)
    api_max_batch_facts: int = Field(default=1000, ge=1, le=10_000)
    api_max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    # ?wait=true answers once the views have the write, or after this long.
    api_wait_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    # Seals the page cursors the API hands out (encrypted and authenticated). Unset, one is
    # generated on first use and kept in the store (v_meta), shared by every worker and
    # restart; set it to choose or rotate it (a rotation only voids the cursors in flight).
    secret_key: str | None = Field(default=None, min_length=32, repr=False)

    # The address the public reaches this server at (behind a proxy, the proxy's): printed
    # on certificates and in their QR code as the place to verify them.
    public_base_url: str = Field(default="http://127.0.0.1:8000", pattern=r"^https?://[^\s]+$")

    # The xAPI bridge's mapping file (TOML, domain/xapi/bridge.py): which statements become
    # learner facts. Unset: statements stay in the LRS only.
    xapi_mapping: str | None = None

    # Test-only fault injection: "POINT:N" makes the process SIGKILL itself the Nth time it
    # reaches POINT (see infra/ops/fault_injection.py), so crash tests need no timing. Never
    # set it in production.
    fault_kill_at: str | None = None
    # The PostgreSQL that `bench` measures on (a private schema, dropped after) and the
    # tests use when they are not given another: STUDYLEDGER_TEST_DATABASE_URL.
    test_database_url: str = "postgresql://postgres@127.0.0.1:5432/test"

    @field_validator("database_url")
    @classmethod
    def _supported_url(cls, value: str) -> str:
        scheme = urlsplit(value).scheme
        if scheme not in ("sqlite", "postgresql", "postgres"):
            raise ValueError(
                f"unsupported database URL scheme {scheme!r}: use sqlite:///path or "
                "postgresql://user@host:port/dbname"
            )
        if scheme == "sqlite" and not sqlite_path(value):
            raise ValueError("sqlite URL needs a path: sqlite:///./var/studyledger.db")
        return value

    @field_validator("fault_kill_at")
    @classmethod
    def _known_fault_point(cls, value: str | None) -> str | None:
        if value:
            parse_kill_at(value)
        return value or None

    @property
    def is_sqlite(self) -> bool:
        return urlsplit(self.database_url).scheme == "sqlite"


def display_url(url: str) -> str:
    """The database URL fit to print or log: its password masked, `user:***@host:port/db`."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        userinfo, _, host = netloc.rpartition("@")
        netloc = f"{userinfo.partition(':')[0]}:***@{host}"
    # libpq also takes the password as a query parameter.
    query = re.sub(r"(?i)(^|&)(password=)[^&]*", r"\1\2***", parts.query)
    shown = f"{parts.scheme}://{netloc}{parts.path}"  # urlunsplit would drop sqlite's "//"
    return shown + (f"?{query}" if query else "") + (
        f"#{parts.fragment}" if parts.fragment else "")


def sqlite_path(url: str) -> str:
    """sqlite:///var/x.db -> var/x.db ; sqlite:////tmp/x.db -> /tmp/x.db"""
    return unquote(url.removeprefix("sqlite://").removeprefix("/"))


def ensure_parent_dir(path: str) -> None:
    Path(path).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
