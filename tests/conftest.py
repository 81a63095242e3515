"""Real backends for tests: SQLite files in tmp dirs and a real PostgreSQL server.

PostgreSQL, in order: STUDYLEDGER_TEST_DATABASE_URL; the local server at 127.0.0.1:5432
(database `test`); a private cluster started with the machine's initdb/pg_ctl. When none
can be had the PostgreSQL tests fail, loudly: they are never silently skipped.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from domain.application import StudyLedger
from infra.bootstrap import build_ledger
from infra.settings import Settings

LOCAL_URL = "postgresql://postgres@127.0.0.1:5432/test"


def _reachable(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


def _start_private_cluster(base: Path, port: int | None = None) -> tuple[str, Path] | None:
    initdbs = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb")) or (
        [shutil.which("initdb")] if shutil.which("initdb") else []
    )
    if not initdbs:
        return None
    bindir = Path(initdbs[-1]).parent
    data = base / "pgdata"
    if os.geteuid() == 0:  # initdb refuses to run as root
        shutil.chown(base, "postgres")
    port = port or 55432 + os.getpid() % 1000
    subprocess.run([*_as_postgres(), str(bindir / "initdb"), "-D", str(data), "-U", "postgres",
                    "--auth=trust"], check=True, capture_output=True)
    pg_ctl(data, "start", "-w", "-l", str(base / "log"),
           "-o", f"-p {port} -k {base} -c listen_addresses=127.0.0.1")
    url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    return url, data


def _as_postgres() -> list[str]:
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


def pg_ctl(data: Path, action: str, *options: str) -> None:
    """`pg_ctl ACTION` on the private cluster at `data`, with pg_ctl's `options`."""
    bindir = Path(sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))[-1]).parent
    subprocess.run([*_as_postgres(), str(bindir / "pg_ctl"), "-D", str(data), *options,
                    action], check=True, capture_output=True, timeout=120)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    configured = os.environ.get("STUDYLEDGER_TEST_DATABASE_URL")
    if configured:
        if not _reachable(configured):
            pytest.fail(f"STUDYLEDGER_TEST_DATABASE_URL={configured} is not reachable")
        yield configured
        return
    if _reachable(LOCAL_URL):
        yield LOCAL_URL
        return
    base = Path(tempfile.mkdtemp(prefix="studyledger-pg-"))
    started = _start_private_cluster(base)
    if started is None:
        pytest.fail("no PostgreSQL: set STUDYLEDGER_TEST_DATABASE_URL, run one on "
                    "127.0.0.1:5432, or install the server (initdb)")
    url, data = started
    try:
        yield url
    finally:
        pg_ctl = Path(sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))[-1])
        as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*as_user, str(pg_ctl), "-D", str(data), "stop", "-m", "fast"],
                       capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def pg_schema(postgres_url: str) -> Iterator[str]:
    """A fresh schema per test, so tests never see each other's rows."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield schema
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def sqlite_settings(tmp_path: Path) -> Settings:
    return Settings(database_url=f"sqlite:///{tmp_path / 'ledger.db'}")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings for a fresh, empty store on each backend in turn."""
    if request.param == "sqlite":
        return sqlite_settings(tmp_path)
    url = request.getfixturevalue("postgres_url")
    schema = request.getfixturevalue("pg_schema")
    return Settings(database_url=url, database_schema=schema)


@pytest.fixture
def ledger(store_settings: Settings) -> Iterator[StudyLedger]:
    app = build_ledger(store_settings)
    try:
        yield app
    finally:
        app.close()
