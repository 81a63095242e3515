"""Projection runs: live and rebuilt views agree; a killed projector resumes exactly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from domain.facts import IncomingFact
from infra.bootstrap import build_ledger, build_projector
from infra.files.jsonl_ingest import ingest_file
from infra.sample.district import write_demo
from infra.settings import Settings
from projections.ports import ViewBatch
from tests.factories import REGISTRATION, incoming


def split_file(source: Path, parts: int) -> list[Path]:
    lines = source.read_text(encoding="utf-8").splitlines(keepends=True)
    size = len(lines) // parts + 1
    chunks = []
    for index in range(parts):
        chunk = source.with_name(f"part-{index}.jsonl")
        chunk.write_text("".join(lines[index * size:(index + 1) * size]), encoding="utf-8")
        chunks.append(chunk)
    return chunks


def test_interleaved_ingest_and_projection_equals_a_replay(store_settings, tmp_path):
    demo = tmp_path / "demo.jsonl"
    write_demo(demo, learners=60, seed=11)
    settings = store_settings.model_copy(update={"projection_batch_size": 700})
    ledger = build_ledger(settings)
    projector = build_projector(settings, ledger)
    for chunk in split_file(demo, 5):
        ingest_file(ledger, chunk, rejections_path=tmp_path / "rejects", batch_size=300,
                    show_progress=False)
        projector.run_once()
    live = projector.views.dump()
    projector.replay()
    rebuilt = projector.views.dump()
    assert len(live["v_balances"]) > 60 * 10  # the views hold something to compare
    assert live == rebuilt
    spot = next(row for row in live["v_balances"] if row[0] == "L000007" and row[2] == "2023")
    assert spot[7] == ledger.balance("L000007", spot[1], "2023").model_dump_json()
    projector.views.close()
    ledger.close()


def test_sigkilled_projector_resumes_to_exactly_the_rebuilt_views(tmp_path):
    db = tmp_path / "views.db"
    settings = Settings(database_url=f"sqlite:///{db}")
    demo = tmp_path / "demo.jsonl"
    write_demo(demo, learners=150, seed=5)
    ledger = build_ledger(settings)
    ingest_file(ledger, demo, rejections_path=tmp_path / "rejects", show_progress=False)
    total = ledger.recorder.max_notification_id()
    observer = build_projector(settings, ledger)

    env = os.environ | {"STUDYLEDGER_DATABASE_URL": f"sqlite:///{db}",
                        "STUDYLEDGER_PROJECTION_BATCH_SIZE": "400"}
    # The projector kills itself right after its 3rd batch commits: no timing involved.
    victim = subprocess.run([sys.executable, "-m", "infra.cli", "project"], env=env | {
        "STUDYLEDGER_FAULT_KILL_AT": "project.after_batch_commit:3"}, capture_output=True,
        text=True, timeout=300)
    assert victim.returncode == -signal.SIGKILL, victim.stderr
    killed_at = observer.views.position()
    assert killed_at == ledger.recorder.select_notifications(start=1, limit=1200)[-1].id
    assert killed_at < total

    resumed = subprocess.run([sys.executable, "-m", "infra.cli", "project", "--once"],
                             env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert observer.views.position() == total
    after_restart = observer.views.dump()
    observer.replay()
    assert after_restart == observer.views.dump()
    observer.views.close()
    ledger.close()


def test_projector_stops_cleanly_on_sigterm(tmp_path):
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'idle.db'}")
    build_ledger(settings).close()
    env = os.environ | {"STUDYLEDGER_DATABASE_URL": settings.database_url}
    process = subprocess.Popen([sys.executable, "-m", "infra.cli", "project", "--poll", "0.1"],
                               env=env, stdout=subprocess.PIPE, text=True)
    assert "projecting" in process.stdout.readline()
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0
    assert "stopped at position 0" in process.stdout.read()


def test_learners_followed_batch_to_batch_give_the_views_and_board_counts_of_a_replay(
        store_settings):
    """A learner the runner already wrote gets only its changed balance rows and moves the
    board counts by the difference: scores that change or fall to zero, beside learners
    written whole (a void takes a cycle away, a transfer), must all equal a rebuild."""
    def org(org_id: str, parent: str | None) -> IncomingFact:
        return incoming("org.registered", {"org_id": org_id, "name": f"单位{org_id}",
                                           "parent_id": parent}, learner_id=None)

    def learner(learner_id: str, org_id: str) -> IncomingFact:
        return incoming("learner.registered", REGISTRATION | {"org_id": org_id},
                        learner_id=learner_id, at="2021-01-04T09:00:00+08:00")

    def training(learner_id: str, hours: int, at: str = "2022-05-01T10:00:00+08:00"
                 ) -> IncomingFact:
        return incoming("training.attended", {"program_id": "P", "kind": "thematic",
                                              "hours": hours, "leave_hours": 0},
                        learner_id=learner_id, at=at)

    def void(learner_id: str, target: IncomingFact) -> IncomingFact:
        return incoming("record.voided", {"target_event_id": str(target.event_id),
                                          "reason": "代学代考"}, learner_id=learner_id,
                        at="2023-02-01T10:00:00+08:00")

    ledger = build_ledger(store_settings)
    projector = build_projector(store_settings, ledger)
    def adjust(learner_id: str, amount: str) -> IncomingFact:
        return incoming("credits.adjusted", {"category": "basic", "amount": amount,
                                             "reason": "核定"}, learner_id=learner_id,
                        at="2022-06-01T10:00:00+08:00")

    l3_later = training("L3", 8, at="2026-05-01T10:00:00+08:00")
    steps = [
        [org("R", None), org("U1", "R"), org("U2", "R"), learner("L1", "U1"),
         learner("L2", "U1"), learner("L3", "U2"), training("L1", 40), adjust("L2", "5")],
        [training("L1", 8), training("L3", 16), l3_later],  # scores move; a new cycle
        [adjust("L2", "-5"), void("L3", l3_later)],  # a score back to zero; the cycle goes
        [incoming("learner.transferred", {"org_id": "U2"}, learner_id="L1",
                  at="2023-03-01T00:00:00+08:00"), training("L3", 4)],
    ]
    batches: list[ViewBatch] = []
    write = projector.views.write
    projector.views.write = lambda batch: (batches.append(batch), write(batch))[1]
    for step in steps:
        results = ledger.record_facts(step, now=datetime.now(UTC), channel="test")
        assert {result.status for result in results} == {"stored"}
        projector.run_once()
        # A transfer recounts its boards whole: the counts must be right before it, too.
        counted = projector.views.dump()["v_board_counts"]
        assert counted == projector.views.query(
            "SELECT policy, period, org_id, score_cents, COUNT(*) FROM v_board "
            "GROUP BY policy, period, org_id, score_cents "
            "ORDER BY policy, period, org_id, score_cents")
        assert counted
    assert [[row.learner_id for row in b.kept_learners] for b in batches] == [
        [], ["L1", "L3"], ["L2"], ["L3"]]
    # A void folds its learner anew, a transfer changes the directory row: written whole.
    assert [[row.learner_id for row in b.learners] for b in batches[2:]] == [["L3"], ["L1"]]
    assert batches[2].scores_before[("L2", "dadukou-double-100", "2021-2025")] == 500
    live = projector.views.dump()
    projector.replay()
    assert live == projector.views.dump()
    assert not [row for row in live["v_balances"] if row[0] == "L3" and row[2] == "2026-2030"]
    projector.views.close()
    ledger.close()
