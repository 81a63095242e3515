"""The `studyledger` command as a user runs it: a real process on a real SQLite file."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from domain.identity import learner_archive_id
from tests.factories import REGISTRATION, SESSION, envelope

ORG = envelope("org.registered", {"org_id": "500104-07", "name": "单位", "parent_id": None},
               learner_id=None, at="2021-01-01T09:00:00+08:00", external_id="org")
REG = envelope("learner.registered", REGISTRATION, at="2021-01-04T09:00:00+08:00",
               external_id="reg")


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"STUDYLEDGER_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}"}
    return subprocess.run([sys.executable, "-m", "infra.cli", *args], capture_output=True,
                          text=True, env=env, timeout=120)


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def session_line(external_id: str, **changes) -> str:
    return json.dumps(envelope("study_session.recorded", SESSION | changes,
                               external_id=external_id), ensure_ascii=False)


@pytest.fixture
def mixed_file(tmp_path: Path) -> Path:
    return write_lines(tmp_path / "facts.jsonl", [
        json.dumps(ORG), json.dumps(REG),
        session_line("ok-1", progress="1"),
        '{"type": "study_session.recorded", ',                     # line 4: malformed JSON
        session_line("bad-progress", progress=1.5),                # line 5
        "",                                                        # blank: not a fact
        session_line("ok-2", course_id="C2", progress="0.95"),     # line 7
        json.dumps(envelope("study_session.recorded", SESSION, learner_id="L404",
                            external_id="stray")),                 # line 8
    ])


def test_ingest_reports_counts_and_exits_non_zero_when_anything_was_rejected(
        tmp_path, mixed_file):
    result = run(tmp_path, "ingest", str(mixed_file))
    assert result.returncode == 1
    assert "7 lines: 4 stored, 0 duplicate, 1 parked, 2 rejected" in result.stdout
    assert "line 8: parked, waiting for learner:L404" in result.stderr


def test_rejected_lines_go_to_a_side_file_with_line_number_and_reason(tmp_path, mixed_file):
    run(tmp_path, "ingest", str(mixed_file))
    side = tmp_path / "facts.jsonl.rejected.jsonl"
    rejected = [json.loads(line) for line in side.read_text(encoding="utf-8").splitlines()]
    assert [(r["line"], r["code"], r["field"]) for r in rejected] == [
        (4, "malformed_json", None),
        (5, "invalid_fact", "payload.progress"),
    ]  # line 8 waits for its learner: parked, not rejected
    assert rejected[1]["raw"] == session_line("bad-progress", progress=1.5)


def test_reingesting_the_same_file_stores_nothing_twice(tmp_path, mixed_file):
    run(tmp_path, "ingest", str(mixed_file))
    again = run(tmp_path, "ingest", str(mixed_file))
    assert "0 stored, 4 duplicate, 1 parked, 2 rejected" in again.stdout
    with sqlite3.connect(tmp_path / "cli.db") as conn:
        assert conn.execute("SELECT COUNT(*) FROM stored_events").fetchone() == (4,)


def test_clean_file_exits_zero_and_leaves_no_side_file(tmp_path):
    clean = write_lines(tmp_path / "clean.jsonl", [json.dumps(ORG), json.dumps(REG)])
    result = run(tmp_path, "ingest", str(clean))
    assert (result.returncode, result.stdout.strip()) == (
        0, f"{clean}: 2 lines: 2 stored, 0 duplicate, 0 parked, 0 rejected")
    assert not (tmp_path / "clean.jsonl.rejected.jsonl").exists()


def test_balance_json_is_the_balance_answer(tmp_path, mixed_file):
    run(tmp_path, "ingest", str(mixed_file))
    result = run(tmp_path, "balance", "L1", "--policy", "dadukou-double-100",
                 "--period", "2021-2025", "--json")
    answer = json.loads(result.stdout)
    assert set(answer) == {"learner_id", "policy", "period", "categories", "totals",
                           "requirements", "status", "promotion", "proration"}
    assert answer["proration"] is None  # registered before the cycle
    assert answer["categories"]["self_study"] == {"raw": "4.00", "counted": "4.00",
                                                  "excess": "0.00"}
    assert answer["totals"] == {"basic": "0.00", "comprehensive": "4.00"}


def test_balance_of_an_unknown_learner_is_one_clear_line(tmp_path, mixed_file):
    run(tmp_path, "ingest", str(mixed_file))
    result = run(tmp_path, "balance", "L404", "--period", "2023")
    assert (result.returncode, result.stderr) == (2, "error: learner L404 is not registered\n")


def test_bad_period_is_one_clear_line(tmp_path, mixed_file):
    run(tmp_path, "ingest", str(mixed_file))
    result = run(tmp_path, "balance", "L1", "--period", "2022-2026")
    assert result.returncode == 2
    assert result.stderr.startswith("error: period '2022-2026' is not a cycle")
    assert "Traceback" not in result.stderr


def test_verify_names_the_tampered_row_and_exits_3(tmp_path, mixed_file):
    run(tmp_path, "ingest", str(mixed_file))
    assert run(tmp_path, "verify").returncode == 0
    with sqlite3.connect(tmp_path / "cli.db") as conn:
        stream = learner_archive_id("L1").hex
        (state,) = conn.execute("SELECT state FROM stored_events WHERE originator_id=? "
                                "AND originator_version=2", (stream,)).fetchone()
        forged = state.replace(b'"course_hours":"2"', b'"course_hours":"9"')
        assert forged != state
        conn.execute("UPDATE stored_events SET state=? WHERE originator_id=? "
                     "AND originator_version=2", (forged, stream))
    result = run(tmp_path, "verify")
    assert result.returncode == 3
    assert "BROKEN learner L1: first broken link at version 2" in result.stdout
    single = run(tmp_path, "verify", "L1", "--json")
    assert single.returncode == 3
    assert json.loads(single.stdout)["broken"][0]["version"] == 2
    assert "BROKEN learner L1" in single.stderr


def test_unsupported_database_url_is_refused_clearly(tmp_path):
    env = os.environ | {"STUDYLEDGER_DATABASE_URL": "mysql://x"}
    result = subprocess.run([sys.executable, "-m", "infra.cli", "verify"], capture_output=True,
                            text=True, env=env, timeout=60)
    assert result.returncode == 2
    assert "STUDYLEDGER_DATABASE_URL" in result.stderr and "mysql" in result.stderr


def test_missing_file_is_one_clear_line(tmp_path):
    result = run(tmp_path, "ingest", str(tmp_path / "nope.jsonl"))
    assert (result.returncode, "no such file" in result.stderr) == (2, True)


def test_every_command_option_and_argument_says_what_it_is_for():
    import argparse

    from infra.cli.main import build_parser

    missing = []

    def walk(parser: argparse.ArgumentParser, path: str) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    walk(child, f"{path} {name}")
            elif not isinstance(action, argparse._HelpAction | argparse._VersionAction) and (
                    not action.help):
                missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}")

    walk(build_parser(), "studyledger")
    assert missing == []
