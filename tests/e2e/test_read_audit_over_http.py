"""Every read of a person's record is audited (key id, never the key); board reads are not;
the audit log is for admin keys only, over HTTP and on the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys

READS = [("auditor", "/v1/learners/L1/balance?period=2024", "/v1/learners/{learner_id}/balance"),
         ("auditor", "/v1/learners/L1/history", "/v1/learners/{learner_id}/history"),
         ("auditor", "/v1/learners/L2/verify", "/v1/learners/{learner_id}/verify"),
         ("admin", "/learners/L1/archive", "/learners/{learner_id}/archive")]


def audit_log(api, **params: str) -> list[dict]:
    with api.client("admin") as http:
        answer = http.get("/v1/audit-log", params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()["entries"]


def test_each_read_kind_is_recorded_with_the_key_id_and_never_the_key(api):
    for role, path, _ in READS:
        with api.client(role) as http:
            assert http.get(path).status_code == 200, path
    entries = audit_log(api, limit="50")
    for role, _, route in READS:
        key_id = api.keys[role].split("_")[1]
        assert any(e["route"] == route and e["key_id"] == key_id and e["role"] == role
                   and e["org_id"] == "A" and e["status"] == 200 for e in entries), route
    text = json.dumps(entries)
    assert not any(secret in text for secret in api.keys.values())
    assert {e["learner_id"] for e in audit_log(api, learner="L2")} == {"L2"}


def test_board_reads_are_not_recorded(api):
    before = audit_log(api, limit="1000")
    with api.client("auditor") as http:
        http.get("/v1/boards/dadukou-double-100/2021-2025?org=A")
        http.get("/v1/boards/dadukou-double-100/2021-2025/learners/L1?org=A")
    assert audit_log(api, limit="1000") == before


def test_a_refused_read_is_recorded_and_the_log_is_for_admins_only(api):
    with api.client("platform") as http:
        assert http.get("/v1/learners/L1/balance?period=2024").status_code == 403
    platform_id = api.keys["platform"].split("_")[1]
    assert [e["status"] for e in audit_log(api, key=platform_id)] == [403]
    for role in ("auditor", "platform", "reviewer"):
        with api.client(role) as http:
            assert http.get("/v1/audit-log").status_code == 403, role
    with api.client() as http:
        assert http.get("/v1/audit-log").status_code == 401


def test_the_audit_log_command_answers_from_the_same_table(api):
    with api.client("auditor") as http:
        assert http.get("/v1/learners/L3/verify").status_code == 403  # L3 is outside A
    settings = api.settings
    env = os.environ | {"STUDYLEDGER_DATABASE_URL": settings.database_url,
                        "STUDYLEDGER_DATABASE_SCHEMA": settings.database_schema}
    done = subprocess.run([sys.executable, "-m", "infra.cli", "audit-log", "--learner", "L3",
                           "--json"], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert lines and {line["learner_id"] for line in lines} == {"L3"}
    assert lines[0]["key_id"] == api.keys["auditor"].split("_")[1]
    assert not any(secret in done.stdout for secret in api.keys.values())
    since = subprocess.run([sys.executable, "-m", "infra.cli", "audit-log", "--since",
                            "2999-01-01T00:00:00+00:00"], capture_output=True, text=True,
                           env=env, timeout=120)
    assert (since.returncode, since.stdout) == (0, "")
