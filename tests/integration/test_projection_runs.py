"""Projection runs: live and rebuilt views agree; a killed projector resumes exactly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from infra.bootstrap import build_ledger, build_projector
from infra.files.jsonl_ingest import ingest_file
from infra.sample.district import write_demo
from infra.settings import Settings


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
