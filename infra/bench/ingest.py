"""`studyledger bench`: the demo file's ingest and replay rates next to raw-write baselines.

Machines here are noisy, so every figure is paired with baselines measured in the same run on
the same database, each writing as many similar rows (same columns as the event table, the
same canonical fact JSON as the state) 1000 rows a transaction:
- the floor: on PostgreSQL a binary COPY of the events and their fact keys (the rows the
  write path stores), on SQLite a plain `executemany` of the same two tables;
- a plain multi-row INSERT of the events alone (the baseline of the earlier figures).
Ingest and `replay` (every view rebuilt from the log the ingest wrote) are compared with the
floor. Each figure is the median of `repeats` runs, each on a fresh store.
"""

from __future__ import annotations

import resource
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import psycopg

from infra.bench.datasets import PgSchema
from infra.bootstrap import build_ledger, build_projector
from infra.files.jsonl_ingest import Rejection, ingest_file, parse_line
from infra.sample.district import write_demo
from infra.settings import Settings

Row = tuple[uuid.UUID, int, str, bytes, uuid.UUID, str]  # + the fact key's id and digest
ROWS_PER_TRANSACTION = 1000


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
                         parsed.canonical_text.encode(), parsed.event_id, parsed.digest))
    return rows


def _timed(action: Callable[..., int], *args: Any) -> float:
    """Rows per second of one call of `action`, which returns how many rows it wrote."""
    start = time.perf_counter()
    count = action(*args)
    return count / (time.perf_counter() - start)


def _floor_sqlite(path: Path, rows: Sequence[Row]) -> int:
    """executemany of the events and their fact keys, in tables shaped like the store's."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE floor_events (originator_id TEXT, originator_version INTEGER, "
                 "topic TEXT, state BLOB, PRIMARY KEY (originator_id, originator_version))")
    conn.execute("CREATE TABLE floor_keys (event_id TEXT PRIMARY KEY, originator_id TEXT, "
                 "originator_version INTEGER, digest TEXT) WITHOUT ROWID")
    for start in range(0, len(rows), ROWS_PER_TRANSACTION):
        batch = rows[start : start + ROWS_PER_TRANSACTION]
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO floor_events VALUES (?,?,?,?)",
                         [(r[0].hex, r[1], r[2], r[3]) for r in batch])
        conn.executemany("INSERT INTO floor_keys VALUES (?,?,?,?)",
                         [(r[4].hex, r[0].hex, r[1], r[5]) for r in batch])
        conn.execute("COMMIT")
    conn.close()
    return len(rows)


def _floor_postgres(url: str, schema: str, rows: Sequence[Row]) -> int:
    """Binary COPY of the events and their fact keys, in tables shaped like the store's."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {schema}.floor_events (originator_id uuid NOT NULL, "
                     "originator_version bigint NOT NULL, topic text, state bytea, "
                     "notification_id bigserial, "
                     "PRIMARY KEY (originator_id, originator_version))")
        conn.execute(f"CREATE UNIQUE INDEX ON {schema}.floor_events (notification_id)")
        conn.execute(f"CREATE TABLE {schema}.floor_keys (event_id uuid PRIMARY KEY, "
                     "originator_id uuid NOT NULL, originator_version bigint NOT NULL, "
                     "digest text NOT NULL)")
        for start in range(0, len(rows), ROWS_PER_TRANSACTION):
            batch = rows[start : start + ROWS_PER_TRANSACTION]
            with conn.transaction(), conn.cursor() as cur:
                with cur.copy(f"COPY {schema}.floor_events (originator_id, originator_version,"
                              " topic, state) FROM STDIN (FORMAT BINARY)") as copy:
                    copy.set_types(["uuid", "int8", "text", "bytea"])
                    for r in batch:
                        copy.write_row(r[:4])
                with cur.copy(f"COPY {schema}.floor_keys FROM STDIN (FORMAT BINARY)") as copy:
                    copy.set_types(["uuid", "uuid", "int8", "text"])
                    for r in batch:
                        copy.write_row((r[4], r[0], r[1], r[5]))
    return len(rows)


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
                    [v for r in batch for v in r[:4]],
                )
    return len(rows)


def _ingest(settings: Settings, demo: Path, rejects: Path) -> int:
    ledger = build_ledger(settings)
    try:
        report = ingest_file(ledger, demo, rejections_path=rejects, show_progress=False)
    finally:
        ledger.close()
    return report.stored


def _replay(settings: Settings) -> int:
    """`studyledger replay`: every view rebuilt from the log."""
    projector = build_projector(settings)
    try:
        return projector.replay()
    finally:
        projector.ledger.close()


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


Figures = dict[str, list[float]]


def _one_run(figures: Figures, store: str, run: int, settings: Settings, work: Path,
             demo: Path, floor: Callable[[], float], raw: Callable[[], float]) -> None:
    measured = {"ingest": _timed(_ingest, settings, demo, work / "rejects.jsonl"),
                "replay": _timed(_replay, settings), "floor": floor(), "raw": raw()}
    for name, value in measured.items():
        figures.setdefault(name, []).append(value)
    print(f"  {store} run {run + 1}: ingest {measured['ingest']:,.0f}/s, replay "
          f"{measured['replay']:,.0f}/s, floor {measured['floor']:,.0f}/s, raw INSERT "
          f"{measured['raw']:,.0f}/s; peak RSS so far {_peak_rss_mib():,.0f} MiB", flush=True)


def _measure_sqlite(work: Path, demo: Path, rows: Sequence[Row], repeats: int) -> Figures:
    figures: Figures = {}
    for run in range(repeats):
        settings = Settings(database_url=f"sqlite:///{work / f'ledger-{run}.db'}")
        _one_run(figures, "sqlite", run, settings, work, demo,
                 partial(_timed, _floor_sqlite, work / f"floor-{run}.db", rows),
                 partial(_timed, _raw_sqlite, work / f"raw-{run}.db", rows))
    return figures


def _measure_postgres(url: str, work: Path, demo: Path, rows: Sequence[Row],
                      repeats: int) -> Figures:
    figures: Figures = {}
    for run in range(repeats):
        with PgSchema(url) as schema:
            settings = Settings(database_url=url, database_schema=schema)
            _one_run(figures, "postgres", run, settings, work, demo,
                     partial(_timed, _floor_postgres, url, schema, rows),
                     partial(_timed, _raw_postgres, url, schema, rows))
    return figures


def run_ingest_bench(*, postgres_url: str, repeats: int, learners: int,
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
            results["PostgreSQL"] = _measure_postgres(postgres_url, work, demo, rows, repeats)
    print(f"\nmedians of {repeats}; floor = binary COPY (PostgreSQL) or executemany (SQLite) "
          "of events + fact keys; peak RSS of this process "
          f"{_peak_rss_mib():,.0f} MiB")
    print("| store | facts | ingest /s | replay /s | floor rows/s | ingest / floor "
          "| replay / floor | raw INSERT rows/s | ingest / raw INSERT |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for store, figures in results.items():
        m = {name: statistics.median(values) for name, values in figures.items()}
        print(f"| {store} | {len(rows):,} | {m['ingest']:,.0f} | {m['replay']:,.0f} "
              f"| {m['floor']:,.0f} | {m['ingest'] / m['floor']:.3f} "
              f"| {m['replay'] / m['floor']:.3f} | {m['raw']:,.0f} "
              f"| {m['ingest'] / m['raw']:.2f} |")
    return 0
