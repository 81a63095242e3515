"""The demo district looks like a real one: most cadres meet the cycle, some do not."""

from __future__ import annotations

from collections import Counter

from infra.bootstrap import build_ledger
from infra.files.jsonl_ingest import ingest_file
from infra.sample.district import write_demo
from tests.conftest import sqlite_settings

POLICY = "dadukou-double-100"


def test_demo_district_at_default_size_is_mostly_compliant_with_some_short_and_late(tmp_path):
    demo = tmp_path / "demo.jsonl"
    write_demo(demo)
    ledger = build_ledger(sqlite_settings(tmp_path))
    ingest_file(ledger, demo, rejections_path=tmp_path / "rejects", show_progress=False)
    cycle: Counter[str] = Counter()
    made_up = 0
    for number in range(1, 501):
        learner_id = f"L{number:06d}"
        status = ledger.balance(learner_id, POLICY, "2021-2025").status
        cycle[status] += 1
        promotions = [ledger.balance(learner_id, POLICY, str(year)).promotion.status
                      for year in range(2022, 2026)]
        if status == "met" and "make_up_required" in promotions:
            made_up += 1  # late in one year, made it up afterwards
    ledger.close()
    assert cycle["met"] + cycle["short"] == 500
    assert 0.6 * 500 <= cycle["met"] <= 0.9 * 500, cycle
    assert cycle["short"] >= 0.1 * 500, cycle
    assert 0.05 * 500 <= made_up <= 0.2 * 500, made_up


def test_same_seed_writes_the_same_file_byte_for_byte(tmp_path):
    write_demo(tmp_path / "a.jsonl", learners=30, seed=5)
    write_demo(tmp_path / "b.jsonl", learners=30, seed=5)
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
