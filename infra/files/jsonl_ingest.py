"""Stream a JSONL file of fact envelopes into the ledger in batches.

Each line ends as stored, duplicate or rejected (a conflict is a rejection). Rejected lines
go to a side file with their line number, field and reason, so nothing vanishes. Each batch
is one transaction: a crash loses at most the batch in flight, and re-running the same file
stores only what is missing (the rest answers "duplicate").

A line is a fact envelope, or a recorded fact as `studyledger export` writes it
(infra.files.jsonl_lines): for the latter the hash the fact gets here is compared with the
exported one. Lines are read and validated ahead of the writer (infra.files.read_ahead).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from uuid import UUID

from tqdm import tqdm

from consumers.fault_points import FaultPoint, no_faults
from domain.application import RecordResult, StudyLedger
from domain.gc_pauses import fewer_gc_pauses
from infra.files.jsonl_lines import (
    ParsedLine,
    Rejection,
    describe_validation_error,
    parse_line,
    read_line,
)
from infra.files.read_ahead import read_ahead, validation_workers
from infra.ops.fault_injection import INGEST_AFTER_BATCH_COMMIT
from infra.ops.metrics import FACT_OUTCOMES, count_facts

# Read by the benches and tests from here, beside ingest_file.
__all__ = ["IngestReport", "ParsedLine", "Rejection", "describe_validation_error",
           "ingest_file", "parse_line", "read_line", "utc_now"]

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class IngestReport:
    lines: int = 0
    stored: int = 0
    duplicate: int = 0
    rejected: int = 0
    parked: int = 0  # still waiting for a prerequisite at the end of the run
    # Exported lines recorded (or found recorded) here: with the exported hash, or another.
    hash_same: int = 0
    hash_differs: list[int] = field(default_factory=list)  # line numbers
    still_waiting: list[tuple[int, str]] = field(default_factory=list)  # (line, waits for)
    rejections_path: Path | None = None
    first_rejections: list[Rejection] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.rejected == 0


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


def _compare_hashes(ledger: StudyLedger, exported: dict[int, tuple[int, str]],
                    report: IngestReport) -> None:
    """Does each exported line's fact carry here the hash it had where it was exported?
    It does when its stream here holds the same facts before it, in the same order."""
    positions = sorted(exported)
    while positions:
        # One read per run of nearby positions: a batch's facts are stored together.
        run = [positions.pop(0)]
        while positions and positions[0] - run[-1] <= 100:
            run.append(positions.pop(0))
        page = ledger.recorder.select_notifications(start=run[0], limit=run[-1] - run[0] + 1,
                                                    stop=run[-1])
        for notification in page:
            if notification.id not in exported:
                continue
            line, expected = exported[notification.id]
            event: Any = ledger.mapper.to_domain_event(notification)
            if event.hash == expected:
                report.hash_same += 1
            else:
                report.hash_differs.append(line)


@dataclass
class _FileBatch:
    """The lines of a file waiting to be recorded, and what recording them reports."""

    ledger: StudyLedger
    report: IngestReport
    sink: _RejectionSink
    file_json: str  # the file's name as JSON, spelled once for every line's origin
    channel: str
    clock: Clock
    fault_point: FaultPoint
    lines: list[tuple[int, str, ParsedLine]] = field(default_factory=list)
    # Facts parked so far, by event id: (line number, raw line); a later line may release them.
    parked: dict[UUID, tuple[int, str]] = field(default_factory=dict)

    def flush(self) -> None:
        # json.dumps({"file": str(path), "line": number}), the file's part spelled once
        origins = [f'{{"file": {self.file_json}, "line": {number}}}'
                   for number, _, _ in self.lines]
        results = self.ledger.record_facts([item[2].incoming for item in self.lines],
                                           now=self.clock(), channel=self.channel,
                                           origins=origins)
        self.fault_point(INGEST_AFTER_BATCH_COMMIT)
        count_facts(self.channel, [r.status if r.status in FACT_OUTCOMES else "rejected"
                                   for r in results])
        exported: dict[int, tuple[int, str]] = {}  # position here -> (line, exported hash)
        for (number, raw, line), result in zip(self.lines, results, strict=True):
            self._count(number, raw, line, result, exported)
        self.lines.clear()
        _compare_hashes(self.ledger, exported, self.report)

    def _count(self, number: int, raw: str, line: ParsedLine, result: RecordResult,
               exported: dict[int, tuple[int, str]]) -> None:
        if result.status in ("stored", "duplicate"):
            setattr(self.report, result.status, getattr(self.report, result.status) + 1)
            if line.exported_hash is not None and result.position is not None:
                exported[result.position] = (number, line.exported_hash)
        elif result.status == "parked":
            self.parked[result.event_id] = (number, raw)
        else:
            self.report.rejected += 1
            error = result.error
            assert error is not None
            self.sink.add(Rejection(number, error.code, error.field, error.message, raw))


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
    validate_workers: int | None = None,
) -> IngestReport:
    """Ingest a JSONL file; `show_progress=None` shows a bar only on a terminal.
    `validate_workers`: processes validating lines beside the writer (0: a thread; None:
    one per spare core for a large file)."""
    rejections_path = rejections_path or path.with_name(path.name + ".rejected.jsonl")
    sink = _RejectionSink(rejections_path)
    report = IngestReport(rejections_path=rejections_path)
    batch = _FileBatch(ledger, report, sink, json.dumps(str(path)), channel, clock, fault_point)
    bar_options: dict[str, Any] = {"unit": "B", "unit_scale": True, "desc": path.name}
    disable = None if show_progress is None else not show_progress  # None: off unless a TTY
    size = path.stat().st_size
    workers = validation_workers(size, validate_workers)
    with fewer_gc_pauses(), path.open("rb") as handle, tqdm(
        total=size, disable=disable, **bar_options
    ) as bar:
        try:
            for number, raw, parsed in read_ahead(handle, bar, workers=workers):
                report.lines += 1
                if isinstance(parsed, Rejection):
                    report.rejected += 1
                    count_facts(channel, ["rejected"])
                    sink.add(parsed)
                    continue
                batch.lines.append((number, raw, parsed))
                if len(batch.lines) >= batch_size:
                    batch.flush()
            if batch.lines:
                batch.flush()
            _settle_parked(ledger, batch.parked, report, sink)
        finally:
            sink.close()
    report.first_rejections = sink.first
    if report.rejected == 0:
        report.rejections_path = None
    return report
