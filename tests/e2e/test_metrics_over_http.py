"""GET /metrics over HTTP: the named series exist and move after a write and a read; the
Grafana dashboard names only series that a scrape has."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.factories import envelope

DASHBOARD = Path(__file__).parents[2] / "docs" / "grafana-studyledger.json"
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$")


def scrape(api) -> dict[str, float]:
    with api.client() as http:
        answer = http.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    samples = {}
    for line in answer.text.splitlines():
        match = SAMPLE.match(line)
        if match:
            samples[match[1] + (match[2] or "")] = float(match[3])
    return samples


def value(samples: dict[str, float], name: str, **labels: str) -> float:
    """The sum of the series of `name` whose labels include `labels`."""
    total = 0.0
    for key, number in samples.items():
        metric, _, label_text = key.partition("{")
        if metric == name and all(f'{k}="{v}"' in label_text for k, v in labels.items()):
            total += number
    return total


def test_a_write_and_a_read_move_their_series(api):
    before = scrape(api)
    body = envelope("study_session.recorded", {"course_id": "M-1", "course_hours": "1",
                                               "required": True, "minutes": 60,
                                               "progress": "1"},
                    learner_id="L1", source="cela", at="2024-03-01T10:00:00+08:00")
    with api.client("platform") as http:
        assert http.post("/v1/events?wait=true", json=body).status_code == 201
        assert http.post("/v1/events", json=body).status_code == 200
        assert http.post("/v1/events", json={"type": "nonsense"}).status_code == 422
    with api.client("auditor") as http:
        assert http.get("/v1/learners/L1/balance?period=2024").status_code == 200
    after = scrape(api)
    for status in ("stored", "duplicate", "rejected"):
        assert (value(after, "studyledger_facts_total", channel="http", status=status)
                == value(before, "studyledger_facts_total", channel="http", status=status) + 1)
    route = "/v1/learners/{learner_id}/balance"
    assert (value(after, "studyledger_http_requests_total", route=route, status="200")
            == value(before, "studyledger_http_requests_total", route=route, status="200") + 1)
    assert value(after, "studyledger_http_request_duration_seconds_count", route=route) >= 1
    assert not [key for key in after if "L1" in key], "a learner id became a label"
    assert after["studyledger_log_head_position"] > before["studyledger_log_head_position"]
    assert after["studyledger_projection_position"] >= before["studyledger_log_head_position"]
    assert after["studyledger_projection_lag"] >= 0
    assert after["studyledger_parked_facts"] == 0
    assert after["studyledger_store_up"] == 1
    assert value(after, "studyledger_writer_lock_wait_seconds_count") > value(
        before, "studyledger_writer_lock_wait_seconds_count")


def test_every_metric_on_the_dashboard_is_in_a_scrape(api):
    dashboard = json.loads(DASHBOARD.read_text())
    expressions = [target["expr"] for panel in dashboard["panels"]
                   for target in panel.get("targets", [])]
    named = {name for expr in expressions
             for name in re.findall(r"\b(studyledger_[a-z_]+)", expr)}
    assert named
    scraped = {key.partition("{")[0] for key in scrape(api)}
    # Series a process of its own exports (consume) are declared in every process's registry
    # and show once they have a sample; their HELP line is in every scrape.
    with api.client() as http:
        text = http.get("/metrics").text
    declared = set(re.findall(r"^# TYPE (\S+) ", text, flags=re.MULTILINE))
    for name in sorted(named):
        base = re.sub(r"_(bucket|count|sum|total)$", "", name)
        assert name in scraped or base in declared or name in declared, name
