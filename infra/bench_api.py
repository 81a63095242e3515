"""`studyledger bench api`: the HTTP API under load from a separate loopback process.

On a fresh PostgreSQL schema: a seeded district, then `studyledger serve` as a subprocess
and `infra.load_generator` as another. Measured in one run, so the ratios mean something on a
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
from pathlib import Path
from typing import Any

import httpx

from domain.facts import IncomingFact, parse_fact
from infra.bench_views import UNITS, _facts
from infra.bootstrap import build_ledger, build_projector
from infra.ingest import utc_now
from infra.key_store import KeyStore
from infra.settings import Settings, display_url

BATCH = 1000


def _training(learner: str, external_id: str) -> dict[str, Any]:
    return {"type": "training.attended", "source": "bench-http", "external_id": external_id,
            "learner_id": learner, "occurred_at": "2024-06-03T10:00:00+08:00",
            "actor": "platform:bench-http",
            "payload": {"program_id": "P", "kind": "thematic", "hours": 8, "leave_hours": 0}}


def _batches(learners: int, count: int, tag: str, seed: int) -> list[list[dict[str, Any]]]:
    rng = random.Random(seed)
    return [[_training(f"B{rng.randrange(learners):07d}", f"{tag}-{b}-{i}")
             for i in range(BATCH)] for b in range(count)]


def _load(base: str, *options: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "infra.load_generator", base, *options],
                          capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"load generator failed: {done.stderr.strip()}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _start_server(settings: Settings, port: int, workers: int) -> subprocess.Popen[bytes]:
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


def run_api_bench(settings: Settings, *, learners: int, seconds: float, connections: int,
                  workers: int, port: int) -> int:
    ledger = build_ledger(settings)
    facts: list[IncomingFact] = list(_facts(learners, seed=7))
    for start in range(0, len(facts), BATCH):
        ledger.record_facts(facts[start:start + BATCH], now=utc_now(), channel="bench")
    build_projector(settings, ledger).run_once()
    keys = KeyStore(settings)
    auditor = keys.create("auditor", "D")
    platform = keys.create("platform", "D", "bench-http")
    print(f"seeded {len(facts):,} facts: {learners:,} learners under {UNITS} units", flush=True)

    in_process = _batches(learners, 20, "direct", seed=1)
    started = time.perf_counter()
    for batch in in_process:
        ledger.record_facts([parse_fact(f) for f in batch], now=utc_now(), channel="bench")
    direct_rate = len(in_process) * BATCH / (time.perf_counter() - started)
    print(f"in-process record_facts (parse + write, no HTTP): {direct_rate:,.0f} facts/s",
          flush=True)

    base = f"http://127.0.0.1:{port}"
    server = _start_server(settings, port, workers)
    try:
        with tempfile.TemporaryDirectory(prefix="studyledger-bench-api-") as tmp:
            paths = Path(tmp) / "paths.txt"
            rng = random.Random(3)
            paths.write_text("\n".join(
                f"/v1/learners/B{rng.randrange(learners):07d}/balance?period=2021-2025"
                for _ in range(5000)))
            auth = f"Authorization: Bearer {auditor}"
            common = ["--connections", str(connections), "--seconds", str(seconds)]
            health = _load(base, *common, "--path", "/health")
            balance = _load(base, *common, "--header", auth, "--paths-file", str(paths))
            bodies = Path(tmp) / "bodies.jsonl"
            posts = _batches(learners, int(seconds * 12), "http", seed=2)
            bodies.write_text("\n".join(json.dumps(b) for b in posts))
            before = ledger.recorder.max_notification_id() or 0
            ingest = _load(base, "--connections", "4", "--seconds", str(seconds),
                           "--header", f"Authorization: Bearer {platform}",
                           "--post-bodies-file", str(bodies), "--path", "/v1/events/batch")
            stored = (ledger.recorder.max_notification_id() or 0) - before
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        keys.close()
    ingest_rate = stored / ingest["seconds"]
    print(f"\nAPI on {display_url(settings.database_url)} schema {settings.database_schema}, "
          f"{workers} worker(s); load from a separate process, {connections} connections")
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
    return 0
