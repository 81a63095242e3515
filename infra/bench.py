"""`studyledger bench`: the demo file's ingest rate next to a raw INSERT baseline.

Machines here are noisy, so every figure is paired with a baseline measured in the same
run on the same database: a plain multi-row INSERT of as many similar rows (same columns
as the event table, the same canonical fact JSON as the state), 1000 rows a transaction.
Each figure is the median of `repeats` runs, each on a fresh store.
"""

from __future__ import annotations

import os
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import psycopg

from infra.bootstrap import build_ledger
from infra.demo import write_demo
from infra.ingest import Rejection, ingest_file, parse_line
from infra.settings import Settings

Row = tuple[uuid.UUID, int, str, bytes]
ROWS_PER_TRANSACTION = 1000
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"


def _similar_rows(demo: Path) -> list[Row]:
    """One row per valid fact: its stream, a version, a topic and its canonical JSON."""
    rows: list[Row] = []
    versions: dict[str, int] = {}
    with demo.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            parsed = parse_line(number, line)
            if isinstance(parsed, Rejection):
                continue
            stream = parsed.canonical["learner_id"] or parsed.canonical["payload"]["org_id"]
            versions[stream] = versions.get(stream, 0) + 1
            rows.append((uuid.uuid5(uuid.NAMESPACE_OID, stream), versions[stream],
                         "domain.archive:LearnerArchive.FactRecorded",
                         parsed.canonical_text.encode()))
    return rows


def _timed(action: Callable[..., int], *args: Any) -> float:
    """Rows per second of one call of `action`, which returns how many rows it wrote."""
    start = time.perf_counter()
    count = action(*args)
    return count / (time.perf_counter() - start)


def _raw_sqlite(path: Path, rows: Sequence[Row]) -> int:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE raw_events (originator_id TEXT, originator_version INTEGER, "
                 "topic TEXT, state BLOB, PRIMARY KEY (originator_id, originator_version))")
    per_statement = 250  # 4 parameters a row, under SQLite's parameter limit
    for start in range(0, len(rows), ROWS_PER_TRANSACTION):
        conn.execute("BEGIN")
        batch = rows[start : start + ROWS_PER_TRANSACTION]
        for offset in range(0, len(batch), per_statement):
            chunk = batch[offset : offset + per_statement]
            conn.execute("INSERT INTO raw_events VALUES " + ",".join(["(?,?,?,?)"] * len(chunk)),
                         [v for r in chunk for v in (r[0].hex, r[1], r[2], r[3])])
        conn.execute("COMMIT")
    conn.close()
    return len(rows)


def _raw_postgres(url: str, schema: str, rows: Sequence[Row]) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {schema}.raw_events (originator_id uuid, "
                     "originator_version bigint, topic text, state bytea, "
                     "PRIMARY KEY (originator_id, originator_version))")
        for start in range(0, len(rows), ROWS_PER_TRANSACTION):
            batch = rows[start : start + ROWS_PER_TRANSACTION]
            with conn.transaction():
                conn.execute(
                    f"INSERT INTO {schema}.raw_events VALUES "
                    + ",".join(["(%s,%s,%s,%s)"] * len(batch)),
                    [v for r in batch for v in r],
                )
    return len(rows)


def _ingest(settings: Settings, demo: Path, rejects: Path) -> int:
    ledger = build_ledger(settings)
    try:
        report = ingest_file(ledger, demo, rejections_path=rejects, show_progress=False)
    finally:
        ledger.close()
    return report.stored


class PgSchema:
    def __init__(self, url: str) -> None:
        self.url = url
        self.name = f"bench_{uuid.uuid4().hex[:10]}"

    def __enter__(self) -> str:
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {self.name}")
        return self.name

    def __exit__(self, *exc: object) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {self.name} CASCADE")


def _measure_sqlite(work: Path, demo: Path, rows: Sequence[Row], repeats: int) -> dict[str, float]:
    ours, raw = [], []
    for run in range(repeats):
        db = work / f"ledger-{run}.db"
        settings = Settings(database_url=f"sqlite:///{db}")
        ours.append(_timed(_ingest, settings, demo, work / "rejects.jsonl"))
        raw.append(_timed(_raw_sqlite, work / f"raw-{run}.db", rows))
        print(f"  sqlite run {run + 1}: ours {ours[-1]:,.0f}/s, raw INSERT {raw[-1]:,.0f}/s",
              flush=True)
    return {"ours": statistics.median(ours), "raw": statistics.median(raw)}


def _measure_postgres(url: str, work: Path, demo: Path, rows: Sequence[Row],
                      repeats: int) -> dict[str, float]:
    ours, raw = [], []
    for run in range(repeats):
        with PgSchema(url) as schema:
            settings = Settings(database_url=url, database_schema=schema)
            ours.append(_timed(_ingest, settings, demo, work / "rejects.jsonl"))
            raw.append(_timed(_raw_postgres, url, schema, rows))
        print(f"  postgres run {run + 1}: ours {ours[-1]:,.0f}/s, raw INSERT {raw[-1]:,.0f}/s",
              flush=True)
    return {"ours": statistics.median(ours), "raw": statistics.median(raw)}


def run_ingest_bench(*, postgres_url: str | None, repeats: int, learners: int,
                     skip_postgres: bool) -> int:
    with tempfile.TemporaryDirectory(prefix="studyledger-bench-") as tmp:
        work = Path(tmp)
        demo = work / "demo.jsonl"
        lines = write_demo(demo, learners=learners)
        rows = _similar_rows(demo)
        print(f"demo file: {lines} lines, {len(rows)} valid facts; {repeats} runs per store",
              flush=True)
        results = {"SQLite": _measure_sqlite(work, demo, rows, repeats)}
        if not skip_postgres:
            url = postgres_url or os.environ.get("STUDYLEDGER_TEST_DATABASE_URL") or DEFAULT_PG
            results["PostgreSQL"] = _measure_postgres(url, work, demo, rows, repeats)
    print(f"\n| store | facts | ingest (events/s, median of {repeats}) "
          "| raw multi-row INSERT (rows/s) | ratio |")
    print("|---|---:|---:|---:|---:|")
    for store, figures in results.items():
        print(f"| {store} | {len(rows):,} | {figures['ours']:,.0f} | {figures['raw']:,.0f} "
              f"| {figures['ours'] / figures['raw']:.2f} |")
    return 0
