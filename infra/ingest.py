"""Stream a JSONL file of fact envelopes into the ledger in batches.

Each line ends as stored, duplicate or rejected (a conflict is a rejection). Rejected lines
go to a side file with their line number, field and reason, so nothing vanishes. Each batch
is one transaction: a crash loses at most the batch in flight, and re-running the same file
stores only what is missing (the rest answers "duplicate").
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from uuid import UUID

from pydantic import ValidationError
from tqdm import tqdm

from consumers.fault_points import FaultPoint, no_faults
from domain.application import StudyLedger
from domain.facts import IncomingFact, decode_fact_json, fact_problems, parse_fact
from infra.fault_injection import INGEST_AFTER_BATCH_COMMIT

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Rejection:
    line: int
    code: str
    field: str | None
    reason: str
    raw: str

    def to_json(self) -> str:
        return json.dumps(
            {"line": self.line, "code": self.code, "field": self.field, "reason": self.reason,
             "raw": self.raw},
            ensure_ascii=False,
        )


@dataclass
class IngestReport:
    lines: int = 0
    stored: int = 0
    duplicate: int = 0
    rejected: int = 0
    parked: int = 0  # still waiting for a prerequisite at the end of the run
    still_waiting: list[tuple[int, str]] = field(default_factory=list)  # (line, waits for)
    rejections_path: Path | None = None
    first_rejections: list[Rejection] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.rejected == 0


def describe_validation_error(error: ValidationError) -> tuple[str, str]:
    """(first field path, every problem) of an invalid fact, for the rejections file."""
    problems = fact_problems(error)
    return problems[0][0], "; ".join(f"{path}: {message}" for path, message in problems)


def parse_line(number: int, raw: str) -> IncomingFact | Rejection:
    try:
        data = decode_fact_json(raw)
    except json.JSONDecodeError as exc:
        return Rejection(number, "malformed_json", None, f"malformed JSON: {exc}", raw)
    if not isinstance(data, dict):
        return Rejection(number, "malformed_json", None, "a line must hold one JSON object", raw)
    try:
        return parse_fact(data)
    except ValidationError as exc:
        field_path, reason = describe_validation_error(exc)
        return Rejection(number, "invalid_fact", field_path, reason, raw)


class _RejectionSink:
    """Writes rejections to the side file, opened only when the first one arrives."""

    def __init__(self, path: Path, keep_first: int = 10) -> None:
        self.path = path
        self.keep_first = keep_first
        self.first: list[Rejection] = []
        self._file: IO[str] | None = None
        if path.exists():
            path.unlink()  # a stale file from an earlier run would mislead

    def add(self, rejection: Rejection) -> None:
        if self._file is None:
            self._file = self.path.open("w", encoding="utf-8")
        self._file.write(rejection.to_json() + "\n")
        if len(self.first) < self.keep_first:
            self.first.append(rejection)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def _numbered_lines(handle: IO[bytes], bar: tqdm[Any]) -> Iterator[tuple[int, str]]:
    for number, raw_bytes in enumerate(handle, start=1):
        bar.update(len(raw_bytes))
        raw = raw_bytes.decode("utf-8", errors="replace").strip()
        if raw:
            yield number, raw


def _settle_parked(ledger: StudyLedger, parked: dict[UUID, tuple[int, str]],
                   report: IngestReport, sink: _RejectionSink) -> None:
    """Lines parked during the run: stored once a later line brought what they needed,
    still waiting (reported as parked), or refused when released (a dead letter)."""
    if not parked:
        return
    ids = list(parked)
    waiting = ledger.parking_index.find_parked(ids)
    stored = ledger.fact_index.find_fact_keys(ids)
    report.parked = len(waiting)
    report.stored += len(stored)
    for event_id, (number, raw) in parked.items():
        if event_id in waiting:
            row = waiting[event_id]
            report.still_waiting.append((number, row.waits_for))
        elif event_id not in stored:
            report.rejected += 1
            sink.add(Rejection(number, "refused_when_released", None,
                               "parked, then refused when its prerequisite arrived; "
                               "`studyledger dead-letters list` has the reason", raw))


def ingest_file(
    ledger: StudyLedger,
    path: Path,
    *,
    rejections_path: Path | None = None,
    batch_size: int = 1000,
    channel: str = "cli",
    clock: Clock = utc_now,
    show_progress: bool | None = None,
    fault_point: FaultPoint = no_faults,
) -> IngestReport:
    """Ingest a JSONL file; `show_progress=None` shows a bar only on a terminal."""
    rejections_path = rejections_path or path.with_name(path.name + ".rejected.jsonl")
    sink = _RejectionSink(rejections_path)
    report = IngestReport(rejections_path=rejections_path)
    batch: list[tuple[int, str, IncomingFact]] = []

    parked: dict[UUID, tuple[int, str]] = {}

    def flush() -> None:
        origins = [json.dumps({"file": str(path), "line": number}) for number, _, _ in batch]
        results = ledger.record_facts([item[2] for item in batch], now=clock(), channel=channel,
                                      origins=origins)
        fault_point(INGEST_AFTER_BATCH_COMMIT)
        for (number, raw, _), result in zip(batch, results, strict=True):
            if result.status in ("stored", "duplicate"):
                setattr(report, result.status, getattr(report, result.status) + 1)
                continue
            if result.status == "parked":
                parked[result.event_id] = (number, raw)  # may be released by a later line
                continue
            report.rejected += 1
            error = result.error
            assert error is not None
            sink.add(Rejection(number, error.code, error.field, error.message, raw))
        batch.clear()

    bar_options: dict[str, Any] = {"unit": "B", "unit_scale": True, "desc": path.name}
    disable = None if show_progress is None else not show_progress  # None: off unless a TTY
    with path.open("rb") as handle, tqdm(
        total=path.stat().st_size, disable=disable, **bar_options
    ) as bar:
        try:
            for number, raw in _numbered_lines(handle, bar):
                report.lines += 1
                parsed = parse_line(number, raw)
                if isinstance(parsed, Rejection):
                    report.rejected += 1
                    sink.add(parsed)
                    continue
                batch.append((number, raw, parsed))
                if len(batch) >= batch_size:
                    flush()
            if batch:
                flush()
            _settle_parked(ledger, parked, report, sink)
        finally:
            sink.close()
    report.first_rejections = sink.first
    if report.rejected == 0:
        report.rejections_path = None
    return report
