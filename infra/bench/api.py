"""`studyledger bench api`: the HTTP API under load from a separate loopback process.

On a fresh PostgreSQL schema: a seeded district, then `studyledger serve` as a subprocess
and `infra.bench.load_generator` as another. Measured in one run, so the ratios mean something on a
noisy machine:
- GET /health (a trivial baseline: two tiny queries) and GET balance: requests/s, p50, p99;
- POST /v1/events/batch with 1000-fact batches: facts/s, next to the same batches written
  in-process through `record_facts` (the store's write path alone, no HTTP).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from domain.application import StudyLedger
from domain.facts import IncomingFact, parse_fact
from infra.bench.datasets import UNITS, district_facts
from infra.bootstrap import build_ledger, build_projector
from infra.files.jsonl_ingest import utc_now
from infra.settings import Settings, display_url
from infra.store.keys import KeyStore

BATCH = 1000


def training_fact(learner: str, external_id: str) -> dict[str, Any]:
    """An 8-hour thematic training envelope, as a platform posts it."""
    return {"type": "training.attended", "source": "bench-http", "external_id": external_id,
            "learner_id": learner, "occurred_at": "2024-06-03T10:00:00+08:00",
            "actor": "platform:bench-http",
            "payload": {"program_id": "P", "kind": "thematic", "hours": 8, "leave_hours": 0}}


def _batches(learners: int, count: int, tag: str, seed: int) -> list[list[dict[str, Any]]]:
    rng = random.Random(seed)
    return [[training_fact(f"B{rng.randrange(learners):07d}", f"{tag}-{b}-{i}")
             for i in range(BATCH)] for b in range(count)]


def run_load(base: str, *options: str) -> dict[str, Any]:
    """The load generator in its own process (so that it does not share our GIL)."""
    done = subprocess.run([sys.executable, "-m", "infra.bench.load_generator", base, *options],
                          capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"load generator failed: {done.stderr.strip()}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def start_server(settings: Settings, port: int, workers: int = 1) -> subprocess.Popen[bytes]:
    """`studyledger serve` on `port` as its own process, once it answers /health; its log
    goes to a temp file (printed), so a bench's numbers are not mixed with it."""
    env = os.environ | {"STUDYLEDGER_DATABASE_URL": settings.database_url,
                        "STUDYLEDGER_DATABASE_SCHEMA": settings.database_schema}
    log = Path(tempfile.gettempdir()) / f"studyledger-bench-api-{port}.log"
    print(f"server log: {log}", flush=True)
    with open(log, "w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "infra.cli", "serve", "--port", str(port), "--workers",
             str(workers), "--no-project"], env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.2)
    server.kill()
    raise RuntimeError("the API server did not start within 60 s")


@dataclass
class _Seeded:
    ledger: StudyLedger
    keys: KeyStore
    auditor: str
    platform: str


def run_api_bench(settings: Settings, *, learners: int, seconds: float, connections: int,
                  workers: int, port: int) -> int:
    seeded = _seed(settings, learners)
    direct_rate = _in_process_rate(seeded.ledger, learners)
    server = start_server(settings, port, workers)
    try:
        results = _measure_over_http(f"http://127.0.0.1:{port}", seeded, learners=learners,
                                     seconds=seconds, connections=connections)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        seeded.keys.close()
    print(f"\nAPI on {display_url(settings.database_url)} schema {settings.database_schema}, "
          f"{workers} worker(s); load from a separate process, {connections} connections")
    _print_results(results, direct_rate)
    return 0


def _seed(settings: Settings, learners: int) -> _Seeded:
    """The bench district recorded and projected, and a key for each side of the load."""
    ledger = build_ledger(settings)
    facts: list[IncomingFact] = list(district_facts(learners, seed=7))
    for start in range(0, len(facts), BATCH):
        ledger.record_facts(facts[start:start + BATCH], now=utc_now(), channel="bench")
    build_projector(settings, ledger).run_once()
    keys = KeyStore(settings)
    seeded = _Seeded(ledger, keys, keys.create("auditor", "D"),
                     keys.create("platform", "D", "bench-http"))
    print(f"seeded {len(facts):,} facts: {learners:,} learners under {UNITS} units", flush=True)
    return seeded


def _in_process_rate(ledger: StudyLedger, learners: int) -> float:
    """Facts/s of the same batches written through `record_facts`: the floor under HTTP."""
    in_process = _batches(learners, 20, "direct", seed=1)
    started = time.perf_counter()
    for batch in in_process:
        ledger.record_facts([parse_fact(f) for f in batch], now=utc_now(), channel="bench")
    direct_rate = len(in_process) * BATCH / (time.perf_counter() - started)
    print(f"in-process record_facts (parse + write, no HTTP): {direct_rate:,.0f} facts/s",
          flush=True)
    return direct_rate


def _measure_over_http(base: str, seeded: _Seeded, *, learners: int, seconds: float,
                       connections: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="studyledger-bench-api-") as tmp:
        paths = Path(tmp) / "paths.txt"
        rng = random.Random(3)
        paths.write_text("\n".join(
            f"/v1/learners/B{rng.randrange(learners):07d}/balance?period=2021-2025"
            for _ in range(5000)))
        auth = f"Authorization: Bearer {seeded.auditor}"
        common = ["--connections", str(connections), "--seconds", str(seconds)]
        health = run_load(base, *common, "--path", "/health")
        balance = run_load(base, *common, "--header", auth, "--paths-file", str(paths))
        bodies = Path(tmp) / "bodies.jsonl"
        posts = _batches(learners, int(seconds * 12), "http", seed=2)
        bodies.write_text("\n".join(json.dumps(b) for b in posts))
        before = seeded.ledger.recorder.max_notification_id() or 0
        ingest = run_load(base, "--connections", "4", "--seconds", str(seconds),
                       "--header", f"Authorization: Bearer {seeded.platform}",
                       "--post-bodies-file", str(bodies), "--path", "/v1/events/batch")
        stored = (seeded.ledger.recorder.max_notification_id() or 0) - before
    return {"health": health, "balance": balance, "ingest": ingest, "stored": stored}


def _print_results(results: dict[str, Any], direct_rate: float) -> None:
    health, balance, ingest, stored = (results[k] for k in ("health", "balance", "ingest",
                                                            "stored"))
    ingest_rate = stored / ingest["seconds"]
    print("| measure | requests/s | p50 ms | p99 ms | statuses |")
    print("|---|---:|---:|---:|---|")
    for name, result in (("GET /health (baseline)", health), ("GET balance", balance)):
        print(f"| {name} | {result['per_second']:,.0f} | {result['p50_ms']} | "
              f"{result['p99_ms']} | {result['statuses']} |")
    print(f"\nPOST /v1/events/batch ({BATCH} facts, 4 connections): {ingest_rate:,.0f} facts/s "
          f"stored ({stored:,} facts, {ingest['requests']} batches, p50 {ingest['p50_ms']} ms, "
          f"p99 {ingest['p99_ms']} ms, {ingest['statuses']})")
    print(f"same batches in-process: {direct_rate:,.0f} facts/s; "
          f"HTTP / in-process = {ingest_rate / direct_rate:.2f}")
    print(f"balance / health = {balance['per_second'] / health['per_second']:.2f}")
