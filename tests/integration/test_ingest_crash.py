"""An ingest killed mid-file loses nothing and counts nothing twice when it is run again."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from infra.sample.district import write_demo


def stored_rows(db: Path) -> int:
    try:
        with sqlite3.connect(db) as conn:
            return conn.execute("SELECT COUNT(*) FROM stored_events").fetchone()[0]
    except sqlite3.OperationalError:
        return 0  # the table does not exist yet


def processes_marked(marker: str) -> list[int]:
    """Every live process whose environment holds `marker` (a process and its children)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue  # gone meanwhile, or not ours to read
    return found


# 0: lines validated in the ingest's own process; 1: in a worker process beside it.
@pytest.mark.parametrize("workers", ["0", "1"])
def test_sigkilled_ingest_resumes_without_loss_or_double_counting(tmp_path, workers):
    demo = tmp_path / "demo.jsonl"
    write_demo(demo, learners=120, seed=3)
    db = tmp_path / "crash.db"
    marker = f"crash-{uuid.uuid4()}"
    env = os.environ | {"STUDYLEDGER_DATABASE_URL": f"sqlite:///{db}",
                        "STUDYLEDGER_TEST_MARKER": marker}
    command = [sys.executable, "-m", "infra.cli", "ingest", str(demo), "--batch-size", "200",
               "--validate-workers", workers]

    # The ingest kills itself right after its 5th batch commits: no timing involved.
    victim = subprocess.run(command, env=env | {
        "STUDYLEDGER_FAULT_KILL_AT": "ingest.after_batch_commit:5"}, capture_output=True,
        text=True, timeout=300)
    assert victim.returncode == -signal.SIGKILL, victim.stdout + victim.stderr
    stored_before_restart = stored_rows(db)
    assert 900 <= stored_before_restart <= 1000  # five batches of 200 lines, a few rejected
    # Nothing of the killed ingest lives on: its validation workers and their fork server
    # exit once it is gone (waited for, not slept on: they notice within moments).
    deadline = time.monotonic() + 30
    while processes_marked(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert processes_marked(marker) == []

    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    counts = re.search(r"(\d+) stored, (\d+) duplicate", rerun.stdout)
    assert counts, rerun.stdout + rerun.stderr
    stored, duplicate = int(counts[1]), int(counts[2])
    assert duplicate == stored_before_restart  # everything committed before the kill
    assert stored_rows(db) == stored_before_restart + stored  # nothing recorded twice

    clean = tmp_path / "clean.db"
    env_clean = os.environ | {"STUDYLEDGER_DATABASE_URL": f"sqlite:///{clean}"}
    subprocess.run(command, env=env_clean, capture_output=True, timeout=300)
    assert stored_rows(db) == stored_rows(clean)  # the same facts as one uninterrupted run
    verify = subprocess.run([sys.executable, "-m", "infra.cli", "verify"], env=env,
                            capture_output=True, text=True, timeout=120)
    assert verify.returncode == 0, verify.stdout + verify.stderr
