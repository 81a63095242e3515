"""`studyledger bench lag`: how far the read views trail a steady stream of incoming facts.

The demo district's facts (validated before the clock starts) are recorded at a fixed rate,
one durable batch every tick, by this process; the real `studyledger project` runs beside it
in a process of its own, as it does in a deployment. A watcher samples the views' position
every few milliseconds. A batch's lag is the time from its commit to the first sample at
which the views hold it; the figures are the median, p99 and worst of those, and the most
facts the views were ever behind.
"""

from __future__ import annotations

import math
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from domain.facts import IncomingFact
from infra.bench import BenchSetupError
from infra.bench.datasets import PgSchema
from infra.bootstrap import build_ledger
from infra.files.jsonl_ingest import Rejection, parse_line
from infra.sample.district import write_demo
from infra.settings import Settings
from infra.store.sql_connection import SqlConnection
from infra.views.schema import PROJECTION

TICKS_PER_SECOND = 10
SAMPLE_SECONDS = 0.005


def _valid_facts(demo: Path) -> list[IncomingFact]:
    with demo.open(encoding="utf-8") as handle:
        parsed = (parse_line(number, line) for number, line in enumerate(handle, 1))
        return [fact for fact in parsed if not isinstance(fact, Rejection)]


class _Watcher(threading.Thread):
    """Samples (time, views position) until stopped."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(daemon=True)
        self.settings = settings
        self.samples: list[tuple[float, int]] = []
        self.stop = threading.Event()
        self.tables_made = threading.Event()  # the runner has started and made its tables

    def run(self) -> None:
        db = SqlConnection(self.settings)
        try:
            while not self.stop.is_set():
                try:
                    rows = db.query("SELECT position FROM v_tracking WHERE projection = ?",
                                    (PROJECTION,))
                    self.tables_made.set()
                except Exception:  # noqa: BLE001 - the runner has not made its tables yet
                    rows = []
                self.samples.append((time.perf_counter(), int(rows[0][0]) if rows else 0))
                time.sleep(SAMPLE_SECONDS)
        finally:
            db.close()


def process_cpu_seconds(pid: int) -> float | None:
    """User and system CPU a live process has used so far, from /proc (None elsewhere, or
    once it is gone). Whether the runner kept up is a matter of its CPU: a runner near 100%
    of a core falls behind, its batches grow, and the lag with them."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces: count after it.
    fields = stat[stat.rindex(")") + 2:].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


RUNNER_START_SECONDS = 60


def _project_process(settings: Settings, log: IO[bytes]) -> subprocess.Popen[bytes]:
    env = dict(os.environ, STUDYLEDGER_DATABASE_URL=settings.database_url,
               STUDYLEDGER_DATABASE_SCHEMA=settings.database_schema)
    return subprocess.Popen([sys.executable, "-m", "infra.cli", "project", "--poll", "0.05"],
                            env=env, stdout=log, stderr=subprocess.STDOUT)


def _wait_for_runner(runner: subprocess.Popen[bytes], watcher: _Watcher, log: IO[bytes]
                     ) -> None:
    """Until the runner has made its tables; a runner that exits or never gets there is
    an error naming what it said, not endless lag."""
    deadline = time.monotonic() + RUNNER_START_SECONDS
    while not watcher.tables_made.wait(0.1):
        if runner.poll() is not None or time.monotonic() > deadline:
            log.seek(0)
            said = " ".join(log.read().decode(errors="replace").split()[-60:])
            state = (f"exited with {runner.returncode}" if runner.poll() is not None
                     else f"made no tables within {RUNNER_START_SECONDS} s")
            raise BenchSetupError(f"`studyledger project` {state}: {said or '(no output)'}")


def _measure(settings: Settings, facts: list[IncomingFact], rate: int) -> dict[str, float]:
    ledger = build_ledger(settings)
    runner_log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in the finally below
    runner = _project_process(settings, runner_log)
    watcher = _Watcher(settings)
    commits: list[tuple[float, int]] = []  # (when committed, log position reached)
    per_tick = max(1, rate // TICKS_PER_SECOND)
    try:
        watcher.start()
        # The runner's start (imports, tables) is not what is measured.
        _wait_for_runner(runner, watcher, runner_log)
        start = time.perf_counter()
        runner_cpu_before = process_cpu_seconds(runner.pid)
        for tick, offset in enumerate(range(0, len(facts), per_tick)):
            time.sleep(max(0.0, start + tick / TICKS_PER_SECOND - time.perf_counter()))
            ledger.record_facts(facts[offset:offset + per_tick], now=datetime.now(UTC),
                                channel="bench")
            commits.append((time.perf_counter(), ledger.last_position()))
        writing = time.perf_counter() - start
        deadline = time.perf_counter() + 120
        while time.perf_counter() < deadline and (
                not watcher.samples or watcher.samples[-1][1] < commits[-1][1]):
            time.sleep(0.05)
        runner_cpu_after = process_cpu_seconds(runner.pid)
        runner_busy = (None if runner_cpu_before is None or runner_cpu_after is None
                       else (runner_cpu_after - runner_cpu_before)
                       / (time.perf_counter() - start))
    finally:
        watcher.stop.set()
        watcher.join()
        runner.terminate()
        runner.wait(30)
        runner_log.close()
        ledger.close()
    figures = _lag_figures(commits, watcher.samples, len(facts) / writing)
    figures["runner_busy"] = math.nan if runner_busy is None else runner_busy
    return figures


def _lag_figures(commits: list[tuple[float, int]], samples: list[tuple[float, int]],
                 achieved_rate: float) -> dict[str, float]:
    lags: list[float] = []
    index = 0
    for committed_at, position in commits:
        while index < len(samples) and (samples[index][0] < committed_at
                                        or samples[index][1] < position):
            index += 1
        if index == len(samples):
            lags.append(float("inf"))  # never caught up within the deadline
            continue
        lags.append(samples[index][0] - committed_at)
    behind = 0
    at = 0
    for sampled_at, views_position in samples:  # the most facts written but not projected
        while at < len(commits) and commits[at][0] <= sampled_at:
            at += 1
        if at:
            behind = max(behind, commits[at - 1][1] - views_position)
    lags.sort()
    return {"rate": achieved_rate, "p50": statistics.median(lags),
            "p99": lags[min(len(lags) - 1, int(len(lags) * 0.99))], "max": lags[-1],
            "behind": behind}


def run_lag_bench(*, postgres_url: str, rate: int, learners: int, skip_postgres: bool) -> int:
    with tempfile.TemporaryDirectory(prefix="studyledger-bench-") as tmp:
        demo = Path(tmp) / "demo.jsonl"
        write_demo(demo, learners=learners)
        facts = _valid_facts(demo)
        print(f"demo district: {learners} cadres, {len(facts):,} facts at {rate:,}/s in "
              f"{TICKS_PER_SECOND} batches a second; `studyledger project --poll 0.05` "
              "in its own process", flush=True)
        results = {"SQLite": _measure(Settings(database_url=f"sqlite:///{tmp}/lag.db"),
                                      facts, rate)}
        if not skip_postgres:
            with PgSchema(postgres_url) as schema:
                results["PostgreSQL"] = _measure(
                    Settings(database_url=postgres_url, database_schema=schema), facts, rate)
    print("| store | written /s | lag p50 (s) | lag p99 (s) | lag max (s) | most facts behind "
          "| runner CPU (share of a core) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for store, m in results.items():
        busy = "n/a" if math.isnan(m["runner_busy"]) else f"{m['runner_busy']:.0%}"
        print(f"| {store} | {m['rate']:,.0f} | {m['p50']:.2f} | {m['p99']:.2f} "
              f"| {m['max']:.2f} | {m['behind']:,.0f} | {busy} |")
    print("A runner near 100% of a core cannot keep up on this machine: its batches, and the "
          "lag, grow.")
    return 0
