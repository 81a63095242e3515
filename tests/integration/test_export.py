"""`studyledger export` as a user runs it: what it writes, `ingest` takes back, and the
store it fills answers exactly as the one it came from."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from domain.application import StudyLedger
from domain.policy.pack import SHIPPED_PACKS
from infra.bootstrap import build_ledger, build_projector, build_views
from infra.files.jsonl_ingest import ingest_file
from infra.sample.district import write_demo
from infra.settings import Settings
from infra.views.boards import BoardQueries
from tests.conftest import sqlite_settings
from tests.factories import REGISTRATION, SESSION, envelope

LEARNERS = 15
PERIODS = ("2021-2025", "2023")


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"STUDYLEDGER_DATABASE_URL": settings.database_url,
                        "STUDYLEDGER_DATABASE_SCHEMA": settings.database_schema}
    return subprocess.run([sys.executable, "-m", "infra.cli", *args], capture_output=True,
                          text=True, env=env, timeout=300)


def store(tmp_path: Path, name: str) -> Settings:
    return Settings(database_url=f"sqlite:///{tmp_path / name}.db")


def demo_store(tmp_path: Path, settings: Settings, learners: int = LEARNERS) -> Path:
    demo = tmp_path / "demo.jsonl"
    write_demo(demo, learners=learners, seed=7)
    ledger = build_ledger(settings)
    try:
        ingest_file(ledger, demo, rejections_path=tmp_path / "demo.rejects", show_progress=False)
    finally:
        ledger.close()
    return demo


def read_export(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


class Answers:
    """Everything a reader can see of a store, to compare two stores."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def __enter__(self) -> Answers:
        self.ledger: StudyLedger = build_ledger(self.settings)
        return self

    def __exit__(self, *exc: object) -> None:
        self.ledger.close()

    def chains(self) -> dict[UUID, list[tuple[str, str]]]:
        """Every stream's (event id, hash) in stream order."""
        chains: dict[UUID, list[tuple[str, str]]] = {}
        for page_start in range(1, (self.ledger.recorder.max_notification_id() or 0) + 1, 1000):
            for n in self.ledger.recorder.select_notifications(start=page_start, limit=1000):
                event: Any = self.ledger.mapper.to_domain_event(n)
                chains.setdefault(UUID(str(n.originator_id)), []).append(
                    (str(event.event_id), event.hash))
        return chains

    def balances(self, learner_ids: list[str]) -> dict[tuple[str, str, str], str]:
        return {(lid, policy, period): self.ledger.balance(lid, policy, period).model_dump_json()
                for lid in learner_ids for policy in SHIPPED_PACKS for period in PERIODS}

    def verify(self) -> list[tuple[str, int, object]]:
        return sorted((r.label, r.links_checked, r.broken) for r in self.ledger.verify_all())

    def project(self) -> Answers:
        build_projector(self.settings, self.ledger).run_once()
        return self

    def boards(self, orgs: list[str | None]) -> dict[tuple[str, str | None], list[Any]]:
        """Every page of every board (both packs, a cycle) of these orgs."""
        views = build_views(self.settings)
        queries = BoardQueries(views)
        pages: dict[tuple[str, str | None], list[Any]] = {}
        try:
            for policy in SHIPPED_PACKS:
                for org in orgs:
                    cursor, board = None, []
                    while True:
                        page = queries.board(policy, "2021-2025", org=org, limit=4,
                                             cursor=cursor)
                        board.append([e.model_dump() for e in page.entries])
                        if page.next_cursor is None:
                            break
                        cursor = page.next_cursor
                    pages[(policy, org)] = board
        finally:
            views.close()
        return pages

    def orgs(self) -> list[str]:
        views = build_views(self.settings)
        try:
            return [row[0] for row in views.query("SELECT org_id FROM v_orgs ORDER BY org_id")]
        finally:
            views.close()


def learner_ids(count: int = LEARNERS) -> list[str]:
    return [f"L{number:06d}" for number in range(1, count + 1)]


@pytest.mark.postgres
def test_a_district_exported_from_postgresql_answers_the_same_from_sqlite(
        tmp_path, postgres_url, pg_schema):
    source = Settings(database_url=postgres_url, database_schema=pg_schema)
    target = sqlite_settings(tmp_path)
    demo_store(tmp_path, source)
    exported = tmp_path / "district.jsonl"

    result = cli(source, "export", "--out", str(exported))
    assert result.returncode == 0, result.stderr
    lines = read_export(exported)
    assert set(lines[0]) == {"event_id", "position", "recorded_at", "hash", "prev_hash", "fact"}
    assert f"exported {len(lines)} facts to {exported}" in result.stdout
    assert [line["position"] for line in lines] == sorted(line["position"] for line in lines)

    ingested = cli(target, "ingest", str(exported))
    assert ingested.returncode == 0, ingested.stderr
    assert f"{len(lines)} stored, 0 duplicate, 0 parked, 0 rejected" in ingested.stdout
    assert f"hash chain: {len(lines)} of {len(lines)} exported facts have their exported " \
           "hash" in ingested.stdout
    assert cli(target, "verify").returncode == 0

    with Answers(source) as before, Answers(target) as after:
        before.project(), after.project()
        assert after.chains() == before.chains()  # same event ids, order and hashes
        assert after.verify() == before.verify()
        assert after.balances(learner_ids()) == before.balances(learner_ids())
        orgs: list[str | None] = [None, *before.orgs()]
        assert len(orgs) > 5
        assert after.boards(orgs) == before.boards(orgs)


def test_an_incremental_export_continues_where_the_last_one_ended(tmp_path):
    source, target = store(tmp_path, "source"), store(tmp_path, "target")
    demo = tmp_path / "demo.jsonl"
    write_demo(demo, learners=6, seed=3)
    lines = demo.read_text(encoding="utf-8").splitlines()
    first, rest = tmp_path / "first.jsonl", tmp_path / "rest.jsonl"
    first.write_text("\n".join(lines[: len(lines) // 2]) + "\n", encoding="utf-8")
    rest.write_text("\n".join(lines[len(lines) // 2:]) + "\n", encoding="utf-8")

    cli(source, "ingest", str(first))
    earlier = cli(source, "export", "--out", str(tmp_path / "earlier.jsonl"))
    next_position = int(earlier.stdout.rsplit("--from-position ", 1)[1])
    cli(source, "ingest", str(rest))
    later = cli(source, "export", "--from-position", str(next_position),
                "--out", str(tmp_path / "later.jsonl"))
    assert later.returncode == 0, later.stderr
    later_lines = read_export(tmp_path / "later.jsonl")
    assert later_lines and min(line["position"] for line in later_lines) >= next_position

    for part in ("earlier", "later"):
        assert cli(target, "ingest", str(tmp_path / f"{part}.jsonl")).returncode == 0
    with Answers(source) as before, Answers(target) as after:
        assert after.chains() == before.chains()
        assert after.balances(learner_ids(6)) == before.balances(learner_ids(6))
        assert all(broken is None for _, _, broken in after.verify())


def test_a_learners_export_brings_the_org_facts_it_needs(tmp_path):
    source, target = store(tmp_path, "source"), store(tmp_path, "target")
    demo = demo_store(tmp_path, source)
    moved = next(json.loads(line)["learner_id"] for line in demo.read_text().splitlines()
                 if '"learner.transferred"' in line)  # a learner placed in two orgs
    out = tmp_path / "one.jsonl"
    assert cli(source, "export", "--learner", moved, "--out", str(out)).returncode == 0
    lines = read_export(out)
    assert {line["fact"]["learner_id"] for line in lines} == {moved, None}
    placements = {line["fact"]["payload"]["org_id"] for line in lines
                  if line["fact"]["type"] in ("learner.registered", "learner.transferred")}
    assert len(placements) == 2
    org_facts = [line["fact"]["payload"] for line in lines if line["fact"]["learner_id"] is None]
    registered = {p["org_id"]: p["parent_id"] for p in org_facts if "parent_id" in p}
    assert placements <= set(registered)  # both orgs ...
    assert all(parent is None or parent in registered for parent in registered.values())

    ingested = cli(target, "ingest", str(out))  # ... and their parents: nothing waits
    assert ingested.returncode == 0 and " 0 parked, 0 rejected" in ingested.stdout
    with Answers(source) as before, Answers(target) as after:
        assert after.balances([moved]) == before.balances([moved])
        source_chains = before.chains()
        assert all(source_chains[stream] == chain for stream, chain in after.chains().items())
        assert all(broken is None for _, _, broken in after.verify())


def test_an_org_subtree_export_fills_an_empty_store_with_the_same_boards(tmp_path):
    source, target = store(tmp_path, "source"), store(tmp_path, "target")
    demo_store(tmp_path, source)
    out = tmp_path / "unit.jsonl"
    result = cli(source, "export", "--org", "500104-01", "--out", str(out))
    assert result.returncode == 0, result.stderr
    ingested = cli(target, "ingest", str(out))
    assert ingested.returncode == 0 and " 0 parked, 0 rejected" in ingested.stdout
    with Answers(source) as before, Answers(target) as after:
        before.project(), after.project()
        subtree: list[str | None] = ["500104-01", "500104-04", "500104-05"]
        boards = after.boards(subtree)
        assert boards == before.boards(subtree)
        assert boards[("dadukou-double-100", "500104-01")][0]  # the comparison holds learners
        # every org the subtree's learners were ever placed in came along, with its parents
        assert {"5001", "500104", *subtree} <= set(after.orgs())
        assert all(broken is None for _, _, broken in after.verify())


def test_an_unknown_learner_or_org_is_one_clear_line_and_no_file(tmp_path):
    source = store(tmp_path, "source")
    demo_store(tmp_path, source, learners=2)
    out = tmp_path / "x.jsonl"
    for args, message in ((["--learner", "L404"], "learner L404 is not registered"),
                          (["--org", "404"], "org 404 is not registered")):
        result = cli(source, "export", *args, "--out", str(out))
        assert (result.returncode, result.stderr) == (2, f"error: {message}\n")
        assert not out.exists() and not Path(f"{out}.partial").exists()


def write_facts(path: Path, facts: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(f, ensure_ascii=False) + "\n" for f in facts),
                    encoding="utf-8")
    return path


ORG = envelope("org.registered", {"org_id": "9", "name": "+区委", "parent_id": None},
               learner_id=None, at="2021-01-01T09:00:00+08:00", external_id="org-9")


def learner(learner_id: str, name: str) -> dict[str, Any]:
    return envelope("learner.registered", REGISTRATION | {"name": name, "org_id": "9"},
                    learner_id=learner_id, at="2021-01-04T09:00:00+08:00",
                    external_id=f"reg-{learner_id}")


def test_ingest_says_when_a_fact_gets_another_hash_than_exported(tmp_path):
    source, target = store(tmp_path, "source"), store(tmp_path, "target")
    sessions = [envelope("study_session.recorded", SESSION | {"course_id": f"C{n}"},
                         external_id=f"s-{n}") for n in range(3)]
    cli(source, "ingest", str(write_facts(tmp_path / "a.jsonl",
                                          [ORG, learner("L1", "甲"), *sessions[1:]])))
    # the target's L1 holds a session the source's does not, before the exported ones
    cli(target, "ingest", str(write_facts(tmp_path / "b.jsonl",
                                          [ORG, learner("L1", "甲"), sessions[0]])))
    cli(source, "export", "--out", str(tmp_path / "export.jsonl"))
    result = cli(target, "ingest", str(tmp_path / "export.jsonl"))
    assert "2 stored, 2 duplicate, 0 parked, 0 rejected" in result.stdout
    assert "hash chain: 2 of 4 exported facts have their exported hash" in result.stdout
    assert "line 3: recorded with another hash than exported" in result.stderr
    assert result.returncode == 0  # the facts are recorded; the chain here is another one


def test_balances_csv_is_for_spreadsheets_and_holds_the_balance_answers(tmp_path):
    settings = store(tmp_path, "csv")
    facts = [ORG, learner("L1", "=HYPERLINK(\"http://x\")"), learner("L2", "@SUM(A1)"),
             learner("L3", "王五"),
             envelope("penalty.recorded", {"severity": "minor", "reason": "失误"},
                      learner_id="L3", at="2023-03-01T09:00:00+08:00"),
             envelope("study_session.recorded", SESSION | {"progress": "1"}, learner_id="L2")]
    cli(settings, "ingest", str(write_facts(tmp_path / "f.jsonl", facts)))
    cli(settings, "project", "--once")
    out = tmp_path / "balances.csv"
    result = cli(settings, "export", "--balances", "--org", "9", "--period", "2023",
                 "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "wrote the balances of 3 learners" in result.stdout and not result.stderr
    raw = out.read_bytes()
    assert raw.startswith("\ufeff".encode())
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert [(r["learner_id"], r["name"], r["org_name"]) for r in rows] == [
        ("L1", "'=HYPERLINK(\"http://x\")", "'+区委"), ("L2", "'@SUM(A1)", "'+区委"),
        ("L3", "王五", "'+区委")]
    with Answers(settings) as answers:
        for row in rows:
            answer = answers.ledger.balance(row["learner_id"], "dadukou-double-100", "2023")
            assert row["status"] == answer.status
            assert row["performance_raw"] == f"{answer.categories['performance'].raw:.2f}"
            assert row["basic_2023_shortfall"] == f"{answer.requirements[0].shortfall:.2f}"
    assert rows[2]["performance_raw"].startswith("-")  # a number, not text: no quote


def test_balances_csv_says_when_the_views_are_behind(tmp_path):
    settings = store(tmp_path, "csv")
    cli(settings, "ingest", str(write_facts(tmp_path / "f.jsonl", [ORG, learner("L1", "甲")])))
    cli(settings, "project", "--once")
    cli(settings, "ingest", str(write_facts(tmp_path / "g.jsonl", [learner("L2", "乙")])))
    result = cli(settings, "export", "--balances", "--org", "9", "--period", "2023")
    assert result.returncode == 0
    assert result.stdout.startswith("\ufefflearner_id,") and result.stdout.count("\n") == 2
    assert "the views are 1 facts behind the store" in result.stderr
