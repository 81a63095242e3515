"""`serve` as a process, with a fact its projection runner cannot project: /health says so
(503, degraded, stalled at the position, with the error) and recovers by itself."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from infra.bootstrap import build_ledger
from infra.settings import Settings
from tests.e2e.conftest import NOW, _free_port, district_facts
from tests.integration.test_projection_stall import delete_row, insert_unreadable_row, sessions


def health(base: str) -> tuple[int, dict]:
    try:
        answer = httpx.get(f"{base}/health", timeout=10)
    except httpx.TransportError:
        return 0, {}
    return answer.status_code, answer.json()


def wait_health(base: str, predicate, seconds: float = 60) -> tuple[int, dict]:  # noqa: ANN001
    deadline = time.monotonic() + seconds
    while True:
        code, body = health(base)
        if body and predicate(code, body):
            return code, body
        assert time.monotonic() < deadline, (code, body)
        time.sleep(0.1)


def test_health_reports_a_stalled_runner_and_its_recovery(tmp_path: Path):
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'stall.db'}")
    ledger = build_ledger(settings)
    ledger.record_facts(district_facts(), now=NOW, channel="test")
    port = _free_port()
    env = os.environ | {"STUDYLEDGER_DATABASE_URL": settings.database_url,
                        "STUDYLEDGER_PROJECTION_RETRY_MAX_SECONDS": "1"}
    log = (tmp_path / "serve.log").open("w+")
    server = subprocess.Popen([sys.executable, "-m", "infra.cli", "serve", "--port", str(port)],
                              env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_health(base, lambda code, body: code == 200 and body["projection_lag"] == 0)
        ledger.record_facts(sessions(0, 3), now=NOW, channel="test")
        bad = insert_unreadable_row(settings, ledger)
        ledger.record_facts(sessions(3, 6), now=NOW, channel="test")

        code, body = wait_health(
            base, lambda code, body: body["projection"]["status"] == "stalled")
        assert code == 503 and body["status"] == "degraded"
        assert body["projection"]["position"] == bad and body["projection"]["error"]
        assert body["projected_position"] == bad - 1
        assert body["recorded_position"] == bad + 3

        delete_row(settings, bad)
        resumed = time.monotonic()
        code, body = wait_health(base, lambda code, body: code == 200
                                 and body["projected_position"] == bad + 3, 10)
        print(f"\nresumed {time.monotonic() - resumed:.2f} s after the row was removed")
        assert body["status"] == "ok" and body["projection"] == {
            "status": "running", "position": bad + 3, "error": None}
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        ledger.close()
    output = (tmp_path / "serve.log").read_text()
    assert server.returncode == 0, output
    assert f"projection stalled at position {bad}" in output
