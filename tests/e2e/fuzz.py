"""Schemathesis against a real server holding a small demo district: `make fuzz` runs it at
length, tests/e2e/test_fuzz.py a bounded run on both stores.

It generates requests from `/openapi.json` (documented examples, a coverage sweep of every
constraint, then random valid and invalid inputs), sends them anonymously and again with an
auditor key, and fails on any 5xx, an undocumented status or content type, or an answer that
does not match its documented schema.

    python -m tests.e2e.fuzz --examples 1000 [--seed 42] [--learners 60] [--report-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from infra.bootstrap import build_projector
from infra.files.jsonl_ingest import ingest_file
from infra.sample.district import write_demo
from infra.serve import build_services
from infra.settings import Settings
from infra.store.keys import KeyStore
from tests.e2e.conftest import serving

CHECKS = ("not_a_server_error", "response_schema_conformance", "status_code_conformance",
          "content_type_conformance")
DEMO_ORG = "500104"  # the demo district's root: its board is published


@dataclass
class FuzzRun:
    name: str
    returncode: int
    requests: int
    output: str

    @property
    def summary(self) -> str:
        lines = [line.strip() for line in self.output.splitlines()]
        cases = next((lines[i + 1] for i, line in enumerate(lines)
                      if line == "Test cases:" and i + 1 < len(lines)), "?")
        last = next((line.strip("= ") for line in reversed(lines) if line.startswith("==")),
                    "")
        return (f"{self.name}: exit {self.returncode}, {self.requests} requests, "
                f"test cases {cases}; {last}")


def seed_demo(settings: Settings, learners: int, workdir: Path) -> str:
    """Load a demo district of `learners` into an empty store, bring the views up to date,
    and return an auditor key for the whole district."""
    services = build_services(settings)
    try:
        path = workdir / "demo.jsonl"
        write_demo(path, learners=learners)
        # The demo file holds a few deliberately bad lines; their rejections are expected.
        ingest_file(services.ledger, path, channel="fuzz", show_progress=False)
    finally:
        services.ledger.close()
    projector = build_projector(settings)
    projector.run_once()
    projector.views.close()
    keys = KeyStore(settings)
    try:
        return keys.create("auditor", DEMO_ORG)
    finally:
        keys.close()


def schemathesis_command() -> str:
    beside = Path(sys.executable).parent / "schemathesis"
    found = str(beside) if beside.exists() else shutil.which("schemathesis")
    if found is None:
        raise RuntimeError("schemathesis is not installed: pip install -e '.[dev]'")
    return found


def run_schemathesis(base_url: str, name: str, *, examples: int, seed: int, report_dir: Path,
                     key: str | None = None, timeout: float = 3600) -> FuzzRun:
    report_dir = report_dir.resolve()
    report_dir.mkdir(parents=True, exist_ok=True)
    har = report_dir / f"{name}.har.json"
    command = [
        schemathesis_command(), "run", f"{base_url}/openapi.json",
        "--checks", ",".join(CHECKS), "--max-examples", str(examples), "--seed", str(seed),
        # One worker: with several, Hypothesis parses lambdas' source from threads, which
        # CPython 3.11 can fail with "AST constructor recursion depth mismatch".
        "--workers", "1", "--request-timeout", "30", "--suppress-health-check", "all",
        "--report", "har,junit", "--report-har-path", str(har),
        "--report-junit-path", str(report_dir / f"{name}.junit.xml"), "--no-color",
    ]
    if key is not None:
        command += ["-H", f"Authorization: Bearer {key}"]
    # run in the report folder: Schemathesis keeps its example database in the working one
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                          cwd=report_dir)
    (report_dir / f"{name}.log").write_text(done.stdout + done.stderr)
    requests = len(json.loads(har.read_text())["log"]["entries"]) if har.exists() else 0
    return FuzzRun(name, done.returncode, requests, done.stdout + done.stderr)


def fuzz(base_url: str, auditor_key: str, *, examples: int, seed: int,
         report_dir: Path) -> list[FuzzRun]:
    return [run_schemathesis(base_url, name, examples=examples, seed=seed, key=key,
                             report_dir=report_dir)
            for name, key in (("anonymous", None), ("auditor", auditor_key))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=100,
                        help="test cases per operation and phase (schemathesis --max-examples)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--learners", type=int, default=60, help="size of the demo district")
    parser.add_argument("--report-dir", type=Path, default=Path("var/fuzz"),
                        help="HAR, JUnit and the log of each run")
    parser.add_argument("--database-url", help="a store to use instead of a fresh SQLite file "
                        "(it must be empty)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="studyledger-fuzz-") as tmp:
        url = args.database_url or f"sqlite:///{tmp}/ledger.db"
        settings = Settings(database_url=url)
        started = time.monotonic()
        key = seed_demo(settings, args.learners, Path(tmp))
        print(f"demo district of {args.learners} learners loaded in "
              f"{time.monotonic() - started:.1f} s", flush=True)
        with serving(settings) as base_url:
            runs = fuzz(base_url, key, examples=args.examples, seed=args.seed,
                        report_dir=args.report_dir)
    failed = [run for run in runs if run.returncode != 0]
    for run in failed:
        print(run.output)
    for run in runs:
        print(run.summary)
    print(f"total: {sum(run.requests for run in runs)} requests, {len(failed)} failed runs; "
          f"reports in {args.report_dir}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
