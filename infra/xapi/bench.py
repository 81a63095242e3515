"""Statement POST throughput next to our own envelope's, in batches of 100 over HTTP.

`python -m infra.xapi.bench [--seconds S] [--connections C] [--postgres-url URL]`: a fresh
store (SQLite file, or a PostgreSQL schema with --postgres-url) with a seeded district,
`studyledger serve` as a subprocess, and the load generator from another process posting
batches of 100 xAPI statements to /xapi/statements, then batches of 100 facts to
/v1/events/batch, for the same time with the same connections. Prints both rates.
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import signal
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

from infra.bench.api import run_load, start_server, training_fact
from infra.bench.datasets import PgSchema, district_facts
from infra.bootstrap import build_ledger, build_lrs
from infra.files.jsonl_ingest import utc_now
from infra.serve import free_port
from infra.settings import Settings, display_url
from infra.store.keys import KeyStore

BATCH = 100


def _statement(learner: str) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()),
            "actor": {"objectType": "Agent", "name": learner,
                      "account": {"homePage": "https://lms.example/", "name": learner}},
            "verb": {"id": "http://adlnet.gov/expapi/verbs/completed",
                     "display": {"en-US": "completed"}},
            "object": {"objectType": "Activity", "id": "https://lms.example/course/42",
                       "definition": {"name": {"en-US": "Course 42"},
                                      "type": "http://adlnet.gov/expapi/activities/course"}},
            "result": {"completion": True, "duration": "PT45M"},
            "timestamp": "2024-06-03T10:00:00+08:00"}


def run(settings: Settings, *, learners: int, seconds: float, connections: int) -> int:
    ledger = build_ledger(settings)
    facts = list(district_facts(learners, seed=7))
    for start in range(0, len(facts), 1000):
        ledger.record_facts(facts[start:start + 1000], now=utc_now(), channel="bench")
    keys = KeyStore(settings)
    platform = keys.create("platform", "D", "bench-http")
    lrs_pair = keys.create("lrs", "D", basic=True)
    keys.close()
    lrs = build_lrs(settings)  # the statement tables exist before the server starts
    rng = random.Random(2)
    count = int(seconds * 60)
    port = free_port()
    server = start_server(settings, port)
    base = f"http://127.0.0.1:{port}"
    try:
        with tempfile.TemporaryDirectory(prefix="studyledger-bench-xapi-") as tmp:
            statements = Path(tmp) / "statements.jsonl"
            statements.write_text("\n".join(json.dumps(
                [_statement(f"B{rng.randrange(learners):07d}") for _ in range(BATCH)])
                for _ in range(count)))
            basic = base64.b64encode(lrs_pair.encode()).decode()
            xapi = run_load(base, "--connections", str(connections), "--seconds", str(seconds),
                         "--header", f"Authorization: Basic {basic}",
                         "--header", "X-Experience-API-Version: 2.0.0",
                         "--post-bodies-file", str(statements), "--path", "/xapi/statements")
            stored_statements = lrs.app.recorder.max_notification_id() or 0
            envelopes = Path(tmp) / "facts.jsonl"
            envelopes.write_text("\n".join(json.dumps(
                [training_fact(f"B{rng.randrange(learners):07d}", f"x-{b}-{i}")
                 for i in range(BATCH)]) for b in range(count)))
            before = ledger.recorder.max_notification_id() or 0
            ours = run_load(base, "--connections", str(connections), "--seconds", str(seconds),
                         "--header", f"Authorization: Bearer {platform}",
                         "--post-bodies-file", str(envelopes), "--path", "/v1/events/batch")
            stored_facts = (ledger.recorder.max_notification_id() or 0) - before
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        lrs.close()
        ledger.close()
    print(f"\n{display_url(settings.database_url)}, 1 worker, {connections} connections, "
          f"{seconds:.0f} s each, batches of {BATCH}")
    for name, result, stored in (("POST /xapi/statements", xapi, stored_statements),
                                 ("POST /v1/events/batch", ours, stored_facts)):
        print(f"{name}: {stored / result['seconds']:,.0f} stored/s ({stored:,} in "
              f"{result['requests']} requests, p50 {result['p50_ms']} ms, p99 "
              f"{result['p99_ms']} ms, {result['statuses']})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--learners", type=int, default=2000)
    parser.add_argument("--postgres-url")
    args = parser.parse_args(argv)
    options = {"learners": args.learners, "seconds": args.seconds,
               "connections": args.connections}
    if args.postgres_url:
        with PgSchema(args.postgres_url) as schema:
            return run(Settings(database_url=args.postgres_url, database_schema=schema),
                       **options)
    with tempfile.TemporaryDirectory(prefix="studyledger-bench-xapi-") as folder:
        return run(Settings(database_url=f"sqlite:///{folder}/bench.db"), **options)


if __name__ == "__main__":
    sys.exit(main())
