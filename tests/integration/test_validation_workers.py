"""A file validated in worker processes is recorded exactly as one validated in a thread.

Large files are validated by worker processes beside the writer; a valid fact crosses back
in its wire form, a rejection whole. Everything a run reports and stores must be the same
as when the lines are validated in the writer's own process.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from infra.bootstrap import build_ledger
from infra.files.jsonl_ingest import IngestReport, ingest_file
from infra.sample.district import write_demo
from infra.settings import Settings

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)  # both runs judge "future" alike


def _hostile_file(path: Path) -> None:
    """The demo district (its own bad lines and parked facts included), its learners' facts
    before their orgs', with malformed lines, resends, a conflicting resend and exported
    lines (whose hash is compared) mixed in."""
    write_demo(path, learners=25, seed=11)
    lines = path.read_text(encoding="utf-8").splitlines()
    orgs = [line for line in lines if '"org.registered"' in line]
    rest = [line for line in lines if '"org.registered"' not in line]
    first = json.loads(rest[5])
    conflicting = {**first, "payload": {**first["payload"], "name": "另一个名字"}}
    exported = [json.dumps({"fact": json.loads(line), "hash": "0" * 64}, ensure_ascii=False)
                for line in rest[40:43]]
    mixed = [*rest[:600], "{not json", '{"type": "exam.graded"}', *orgs, rest[5],
             json.dumps(conflicting, ensure_ascii=False), "", *rest[600:], *exported,
             "[1, 2]"]
    path.write_text("\n".join(mixed) + "\n", encoding="utf-8")


def _ingest(tmp_path: Path, name: str, source: Path, workers: int) -> tuple[Any, ...]:
    settings = Settings(database_url=f"sqlite:///{tmp_path / f'{name}.db'}")
    ledger = build_ledger(settings)
    rejects = tmp_path / f"{name}.rejected.jsonl"
    report = ingest_file(ledger, source, rejections_path=rejects, batch_size=300,
                         show_progress=False, validate_workers=workers,
                         clock=lambda: NOW)
    rows = ledger.recorder.select_notifications(start=1, limit=1_000_000)
    stored = []
    for row in rows:
        state = ledger.mapper.transcoder.decode(row.state)
        del state["timestamp"]  # when recorded: the one field that differs between runs
        stored.append((row.originator_id, row.originator_version, row.topic, state))
    ledger.close()
    return _comparable(report), rejects.read_text(encoding="utf-8"), stored


def _comparable(report: IngestReport) -> dict[str, Any]:
    fields = asdict(report)
    del fields["rejections_path"]
    return fields


def test_workers_report_and_store_what_the_thread_does(tmp_path: Path) -> None:
    source = tmp_path / "district.jsonl"
    _hostile_file(source)
    in_thread = _ingest(tmp_path, "thread", source, workers=0)
    in_workers = _ingest(tmp_path, "workers", source, workers=2)
    report = in_thread[0]
    # The comparison is about something: every kind of outcome is in the file.
    assert report["stored"] > 2000 and report["duplicate"] >= 1
    assert report["rejected"] >= 5 and report["parked"] >= 1
    assert len(report["hash_differs"]) == 3
    assert in_workers[0] == report
    assert in_workers[1] == in_thread[1]
    assert in_workers[2] == in_thread[2]
