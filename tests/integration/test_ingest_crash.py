"""An ingest killed mid-file loses nothing and counts nothing twice when it is run again."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from infra.demo import write_demo


def stored_rows(db: Path) -> int:
    try:
        with sqlite3.connect(db) as conn:
            return conn.execute("SELECT COUNT(*) FROM stored_events").fetchone()[0]
    except sqlite3.OperationalError:
        return 0  # the table does not exist yet


def test_sigkilled_ingest_resumes_without_loss_or_double_counting(tmp_path):
    demo = tmp_path / "demo.jsonl"
    write_demo(demo, learners=120, seed=3)
    db = tmp_path / "crash.db"
    env = os.environ | {"STUDYLEDGER_DATABASE_URL": f"sqlite:///{db}"}
    command = [sys.executable, "-m", "infra.cli", "ingest", str(demo), "--batch-size", "200"]

    victim = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while stored_rows(db) < 2000 and time.monotonic() < deadline:
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    stored_before_restart = stored_rows(db)
    assert stored_before_restart >= 2000, "the ingest never got going"

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
