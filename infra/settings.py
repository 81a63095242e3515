"""All configuration, in one place: environment variables prefixed STUDYLEDGER_."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STUDYLEDGER_", extra="ignore")

    # sqlite:///relative/path.db, sqlite:////absolute/path.db or postgresql://user@host/db
    database_url: str = "sqlite:///./var/studyledger.db"
    # PostgreSQL schema holding the tables (lets several stores share one database).
    database_schema: str = "public"
    batch_size: int = Field(default=1000, ge=1, le=10_000)
    # Learner archives kept in memory between batches (each a few tens of KB).
    aggregate_cache_size: int = Field(default=5000, ge=0)
    # Facts per projection transaction: large batches catch up much faster (each batch
    # recomputes the learners it touches); small ones make each write visible sooner.
    projection_batch_size: int = Field(default=20_000, ge=1, le=1_000_000)
    kafka_bootstrap: str | None = None

    # HTTP API (`studyledger serve`, `make run`).
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=0, le=65535)
    api_workers: int = Field(default=1, ge=1, le=64)
    api_max_batch_facts: int = Field(default=1000, ge=1, le=10_000)
    api_max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    # ?wait=true answers once the views have the write, or after this long.
    api_wait_timeout_seconds: float = Field(default=10.0, gt=0, le=300)

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

    @property
    def is_sqlite(self) -> bool:
        return urlsplit(self.database_url).scheme == "sqlite"


def sqlite_path(url: str) -> str:
    """sqlite:///var/x.db -> var/x.db ; sqlite:////tmp/x.db -> /tmp/x.db"""
    return unquote(url.removeprefix("sqlite://").removeprefix("/"))


def ensure_parent_dir(path: str) -> None:
    Path(path).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
