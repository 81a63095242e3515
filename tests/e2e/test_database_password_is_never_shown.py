"""A password in STUDYLEDGER_DATABASE_URL never reaches the terminal or the logs: the commands
that name the store (`project`, `serve`, `run`, a store that cannot be opened) show it masked."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from infra.bootstrap import build_ledger
from infra.settings import Settings, display_url
from tests.e2e.conftest import _free_port
from tests.factories import incoming

pytestmark = pytest.mark.postgres


def with_password(url: str) -> tuple[str, str]:
    """The URL with a password in it (any works under trust auth), and that password."""
    parts = urlsplit(url)
    if parts.password:
        return url, parts.password
    secret = f"pw-{uuid.uuid4().hex}"
    netloc = f"{parts.username or 'postgres'}:{secret}@{parts.hostname}:{parts.port or 5432}"
    return parts._replace(netloc=netloc).geturl(), secret


@pytest.fixture
def secret_store(postgres_url: str, pg_schema: str) -> tuple[Settings, str]:
    url, secret = with_password(postgres_url)
    settings = Settings(database_url=url, database_schema=pg_schema)
    ledger = build_ledger(settings)  # not empty, so `run` does not load the demo district
    ledger.record_facts([incoming("org.registered", {"org_id": "R", "name": "区",
                                                     "parent_id": None},
                                  learner_id=None, external_id="org-R")],
                        now=datetime(2026, 11, 22, tzinfo=UTC), channel="t")
    ledger.close()
    return settings, secret


def output_of(settings: Settings, tmp_path: Path, *args: str, until: str) -> str:
    """Start `studyledger ARGS`, wait for `until` in its output, stop it with SIGTERM; all it
    wrote to stdout and stderr."""
    env = os.environ | {"STUDYLEDGER_DATABASE_URL": settings.database_url,
                        "STUDYLEDGER_DATABASE_SCHEMA": settings.database_schema,
                        "STUDYLEDGER_API_PORT": str(_free_port())}
    log_path = tmp_path / f"{args[0]}.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen([sys.executable, "-m", "infra.cli", *args], env=env,
                                   stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 60
        while until not in log_path.read_text():
            assert process.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.1)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    return log_path.read_text()


@pytest.mark.parametrize("args, until", [
    (("project",), "projecting"),
    (("serve", "--no-project"), "Application startup complete"),
    (("run",), "Application startup complete"),
])
def test_commands_that_name_the_store_mask_its_password(secret_store, tmp_path, args, until):
    settings, secret = secret_store
    output = output_of(settings, tmp_path, *args, until=until)
    assert secret not in output
    assert display_url(settings.database_url) in output  # the store is named, masked


@pytest.mark.parametrize("args", [("keys", "list"), ("verify",)])
def test_a_store_that_cannot_be_opened_is_named_without_its_password(tmp_path, args):
    secret = f"pw-{uuid.uuid4().hex}"
    env = os.environ | {"STUDYLEDGER_DATABASE_URL": f"postgresql://u:{secret}@127.0.0.1:1/db"}
    done = subprocess.run([sys.executable, "-m", "infra.cli", *args], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert secret not in done.stdout + done.stderr
    assert "postgresql://u:***@127.0.0.1:1/db" in done.stderr
    assert "Traceback" not in done.stderr

