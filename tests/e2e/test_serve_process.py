"""`studyledger keys` and `studyledger serve` as an operator runs them: real processes."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.e2e.conftest import _free_port


def environment(tmp_path: Path, port: int = 0) -> dict[str, str]:
    return os.environ | {"STUDYLEDGER_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}",
                         "STUDYLEDGER_API_PORT": str(port)}


def cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "infra.cli", *args], capture_output=True,
                          text=True, env=environment(tmp_path), timeout=300, cwd=tmp_path)


def test_keys_create_prints_the_key_alone_and_refuses_bad_requests(tmp_path):
    assert cli(tmp_path, "demo", "--learners", "5", "--out", "d.jsonl").returncode == 0
    made = cli(tmp_path, "keys", "create", "--role", "platform", "--org", "500104",
               "--source", "cela-online")
    assert made.returncode == 0, made.stderr
    assert re.fullmatch(r"sl_[0-9a-f]{8}_[A-Za-z0-9_-]{43}\n", made.stdout)
    no_source = cli(tmp_path, "keys", "create", "--role", "platform", "--org", "500104")
    assert (no_source.returncode, no_source.stdout) == (2, "")
    assert "needs --source" in no_source.stderr
    # A key for an org not registered yet is how a new district starts: made, with a note.
    new_org = cli(tmp_path, "keys", "create", "--role", "admin", "--org", "NEW1")
    assert new_org.returncode == 0, new_org.stderr
    assert re.fullmatch(r"sl_[0-9a-f]{8}_[A-Za-z0-9_-]{43}\n", new_org.stdout)
    assert "NEW1 is not registered yet" in new_org.stderr
    listed = cli(tmp_path, "keys", "list").stdout
    assert made.stdout.split("_")[1] in listed and made.stdout.strip() not in listed


def test_serve_answers_projects_and_stops_cleanly_on_sigterm(tmp_path):
    assert cli(tmp_path, "demo", "--learners", "20", "--out", "d.jsonl").returncode == 0
    key = cli(tmp_path, "keys", "create", "--role", "auditor", "--org", "500104").stdout.strip()
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "infra.cli", "serve", "--port", str(port)],
                              env=environment(tmp_path), cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline, health = time.monotonic() + 60, None
        while time.monotonic() < deadline:
            try:
                health = httpx.get(f"{base}/health").json()
                if health["projection_lag"] == 0:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        assert health is not None and health["projection_lag"] == 0, health
        balance = httpx.get(f"{base}/v1/learners/L000001/balance",
                            params={"period": "2021-2025"},
                            headers={"Authorization": f"Bearer {key}"})
        assert balance.status_code == 200 and balance.json()["learner_id"] == "L000001"
    finally:
        server.send_signal(signal.SIGTERM)
        output, _ = server.communicate(timeout=30)
    assert server.returncode == 0, output
    assert "Traceback" not in output
