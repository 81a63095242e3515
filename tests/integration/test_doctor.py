"""`studyledger doctor`, `--version` and the exit codes, as an operator runs them."""

from __future__ import annotations

import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import psycopg
import pytest

from infra.cli.common import EXIT_CODES
from tests.factories import REGISTRATION, envelope

LINE = re.compile(r"^(ok|note|warn|FAIL) +[a-z ]+: .+$")
README = Path(__file__).resolve().parents[2] / "README.md"
FACTS = [envelope("org.registered", {"org_id": "500104-07", "name": "单位", "parent_id": None},
                  learner_id=None, at="2021-01-01T09:00:00+08:00", external_id="org"),
         envelope("learner.registered", REGISTRATION, at="2021-01-04T09:00:00+08:00",
                  external_id="reg")]


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "infra.cli", *args], capture_output=True,
                          text=True, env=os.environ | env, timeout=120)


def sqlite_env(path: Path, **extra: str) -> dict[str, str]:
    return {"STUDYLEDGER_DATABASE_URL": f"sqlite:///{path}"} | extra


def ingest(env: dict[str, str], tmp_path: Path, facts: list[dict]) -> None:
    path = tmp_path / f"facts-{len(list(tmp_path.iterdir()))}.jsonl"
    path.write_text("".join(json.dumps(f, ensure_ascii=False) + "\n" for f in facts),
                    encoding="utf-8")
    assert run(env, "ingest", str(path)).returncode == 0


def checks(result: subprocess.CompletedProcess[str]) -> dict[str, tuple[str, str]]:
    """check name -> (status, message); every line but the summary is one check."""
    lines = result.stdout.splitlines()
    assert all(LINE.match(line) for line in lines[:-1]), result.stdout
    found = {}
    for line in lines[:-1]:
        status, rest = line.split(None, 1)
        name, message = rest.split(": ", 1)
        found[name] = (status, message)
    return found


def test_a_healthy_store_passes_every_check(tmp_path):
    env = sqlite_env(tmp_path / "s.db")
    ingest(env, tmp_path, FACTS)
    run(env, "project", "--once")
    result = run(env, "doctor")
    assert result.returncode == 0, result.stdout
    found = checks(result)
    assert {name: status for name, (status, _) in found.items()} == {
        "store": "ok", "tables": "ok", "log": "ok", "views": "ok", "views lag": "ok",
        "kafka": "note", "secret key": "note"}
    assert found["log"][1] == "at position 2"
    assert result.stdout.endswith("no check failed\n")


def test_views_behind_or_of_an_older_layout_are_warnings_with_what_to_do(tmp_path):
    env = sqlite_env(tmp_path / "s.db")
    ingest(env, tmp_path, FACTS[:1])
    run(env, "project", "--once")
    ingest(env, tmp_path, FACTS[1:])
    found = checks(result := run(env, "doctor"))
    assert result.returncode == 0
    assert found["views lag"][0] == "warn"
    assert found["views lag"][1].startswith("1 facts not projected yet (views at position 1)")
    assert "studyledger project --once" in found["views lag"][1]
    with sqlite3.connect(tmp_path / "s.db") as conn:
        conn.execute("UPDATE v_meta SET value = '0' WHERE key = 'views_version'")
    found = checks(run(env, "doctor"))
    assert found["views"][0] == "warn" and "studyledger replay" in found["views"][1]


def test_a_missing_store_fails_and_the_doctor_creates_nothing(tmp_path):
    result = run(sqlite_env(tmp_path / "var" / "none.db"), "doctor")
    assert result.returncode == 5
    assert checks(result)["store"][0] == "FAIL"
    assert result.stdout.endswith("1 check failed\n")
    assert not (tmp_path / "var").exists()


def test_a_store_that_was_never_set_up_fails_on_its_tables(tmp_path):
    sqlite3.connect(tmp_path / "empty.db").close()
    result = run(sqlite_env(tmp_path / "empty.db"), "doctor")
    assert result.returncode == 5
    status, message = checks(result)["tables"]
    assert status == "FAIL" and message.startswith("missing: events, fact keys")


def test_settings_are_noted_and_test_only_ones_warned(tmp_path):
    env = sqlite_env(tmp_path / "s.db", STUDYLEDGER_SECRET_KEY="k" * 40,
                     STUDYLEDGER_FAULT_KILL_AT="ingest.after_batch_commit:1000")
    ingest({k: v for k, v in env.items() if "FAULT" not in k}, tmp_path, FACTS)
    found = checks(run(env, "doctor"))
    assert found["secret key"][0] == "ok"
    assert found["fault injection"][0] == "warn"


def test_an_unreachable_broker_fails(tmp_path):
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = sqlite_env(tmp_path / "s.db", STUDYLEDGER_KAFKA_BOOTSTRAP=f"127.0.0.1:{port}")
    ingest(env, tmp_path, FACTS)
    result = run(env, "doctor")
    assert result.returncode == 5
    status, message = checks(result)["kafka"]
    assert status == "FAIL" and message.startswith(f"cannot reach 127.0.0.1:{port}")


@pytest.mark.postgres
def test_a_missing_postgresql_schema_fails_and_is_not_created(postgres_url):
    env = {"STUDYLEDGER_DATABASE_URL": postgres_url,
           "STUDYLEDGER_DATABASE_SCHEMA": "t_doctor_never_made"}
    result = run(env, "doctor")
    assert result.returncode == 5
    assert checks(result)["schema"][0] == "FAIL"
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s",
                            ("t_doctor_never_made",)).fetchone() is None


@pytest.mark.postgres
def test_a_healthy_postgresql_store_passes(tmp_path, postgres_url, pg_schema):
    env = {"STUDYLEDGER_DATABASE_URL": postgres_url, "STUDYLEDGER_DATABASE_SCHEMA": pg_schema}
    ingest(env, tmp_path, FACTS)
    run(env, "project", "--once")
    result = run(env, "doctor")
    assert result.returncode == 0, result.stdout
    assert checks(result)["views lag"] == ("ok", "0 (views at position 2)")


def test_version_is_the_installed_packages():
    result = run({}, "--version")
    assert (result.returncode, result.stdout) == (0, f"studyledger {version('studyledger')}\n")


def test_help_and_readme_list_the_same_exit_codes():
    shown = run({}, "--help").stdout
    for code, meaning in EXIT_CODES:
        assert re.search(rf"^  {code} +{re.escape(meaning)}$", shown, re.MULTILINE)
    table = re.findall(r"^\| `(\d+)` \| (.+) \|$", README.read_text(encoding="utf-8"),
                       re.MULTILINE)
    assert [(int(code), meaning) for code, meaning in table] == list(EXIT_CODES)
