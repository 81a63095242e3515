"""STUDYLEDGER_DATABASE_SCHEMA naming a schema that does not exist yet: created on first use,
or, when the user may not create it, one line saying how to fix it (never a traceback)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest

pytestmark = pytest.mark.postgres


def studyledger(tmp_path: Path, url: str, schema: str, *args: str
                ) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"STUDYLEDGER_DATABASE_URL": url, "STUDYLEDGER_DATABASE_SCHEMA": schema}
    return subprocess.run([sys.executable, "-m", "infra.cli", *args], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)


def schema_exists(url: str, schema: str) -> bool:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s",
                            (schema,)).fetchone() is not None


@pytest.fixture
def fresh_schema(postgres_url: str) -> Iterator[str]:
    """A schema name nobody has created; dropped afterwards if a test made it."""
    schema = f"t_new_{uuid.uuid4().hex[:12]}"
    yield schema
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def unprivileged_url(postgres_url: str) -> Iterator[str]:
    """The test database as a new role that may log in but not create schemas."""
    role, password = f"t_role_{uuid.uuid4().hex[:12]}", uuid.uuid4().hex
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
        may_create = conn.execute("SELECT has_database_privilege(%s, current_database(), "
                                  "'CREATE')", (role,)).fetchone()
    assert may_create == (False,), "the test database lets every role create schemas"
    parts = urlsplit(postgres_url)
    netloc = f"{role}:{password}@{parts.hostname}:{parts.port or 5432}"
    try:
        yield parts._replace(netloc=netloc).geturl()
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f"DROP ROLE {role}")


@pytest.mark.parametrize("args", [("keys", "list"), ("verify",)])
def test_a_missing_schema_is_created_on_first_use(tmp_path, postgres_url, fresh_schema, args):
    done = studyledger(tmp_path, postgres_url, fresh_schema, *args)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert schema_exists(postgres_url, fresh_schema)
    again = studyledger(tmp_path, postgres_url, fresh_schema, *args)  # and reused after
    assert again.returncode == 0, again.stderr


@pytest.mark.parametrize("args", [("keys", "list"), ("verify",)])
def test_a_schema_the_user_may_not_create_is_one_line_saying_how_to_fix_it(
        tmp_path, postgres_url, unprivileged_url, fresh_schema, args):
    done = studyledger(tmp_path, unprivileged_url, fresh_schema, *args)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f'CREATE SCHEMA "{fresh_schema}"' in lines[0]
    assert "STUDYLEDGER_DATABASE_SCHEMA" in lines[0]
    assert not schema_exists(postgres_url, fresh_schema)
