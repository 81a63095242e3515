"""Stream a JSONL file of fact envelopes into the ledger in batches.

Each line ends as stored, duplicate or rejected (a conflict is a rejection). Rejected lines
go to a side file with their line number, field and reason, so nothing vanishes. Each batch
is one transaction: a crash loses at most the batch in flight, and re-running the same file
stores only what is missing (the rest answers "duplicate").

A line is a fact envelope, or a recorded fact as `studyledger export` writes it (and the relay
publishes it): `{"event_id", "position", "recorded_at", "hash", "prev_hash", "fact"}`. Only
the fact is recorded; the rest is checked (the event id must be the fact's own) or compared
(the hash the fact gets here against the exported one).
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Annotated, Any
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError
from tqdm import tqdm

from consumers.fault_points import FaultPoint, no_faults
from domain.application import RecordResult, StudyLedger
from domain.facts import (
    IncomingFact,
    decode_fact_json,
    describe_problems,
    fact_problems,
    parse_fact,
)
from domain.gc_pauses import fewer_gc_pauses
from infra.ops.fault_injection import INGEST_AFTER_BATCH_COMMIT
from infra.ops.metrics import FACT_OUTCOMES, count_facts

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
    # Exported lines recorded (or found recorded) here: with the exported hash, or another.
    hash_same: int = 0
    hash_differs: list[int] = field(default_factory=list)  # line numbers
    still_waiting: list[tuple[int, str]] = field(default_factory=list)  # (line, waits for)
    rejections_path: Path | None = None
    first_rejections: list[Rejection] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.rejected == 0


def describe_validation_error(error: ValidationError) -> tuple[str, str]:
    """(first field path, every problem) of an invalid fact, for the rejections file."""
    problems = fact_problems(error)
    return problems[0][0], describe_problems(problems)


ChainHash = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class RecordedLine(BaseModel):
    """A line of `studyledger export` (the relay's message value): a fact and where it was
    recorded. Unknown fields are refused, as in the envelope."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fact: dict[str, Any]
    event_id: UUID | None = None
    position: int | None = Field(default=None, ge=1)
    recorded_at: AwareDatetime | None = None
    hash: ChainHash | None = None
    prev_hash: ChainHash | None = None


@dataclass(frozen=True)
class ParsedLine:
    incoming: IncomingFact
    exported_hash: str | None = None  # the hash it had where it was exported from


def parse_line(number: int, raw: str) -> IncomingFact | Rejection:
    parsed = read_line(number, raw)
    return parsed if isinstance(parsed, Rejection) else parsed.incoming


def read_line(number: int, raw: str) -> ParsedLine | Rejection:
    """One line: a fact envelope, or a recorded fact as exported (recognised by its `fact`
    field; an envelope has `type` instead)."""
    try:
        data = decode_fact_json(raw)
    except json.JSONDecodeError as exc:
        return Rejection(number, "malformed_json", None, f"malformed JSON: {exc}", raw)
    if not isinstance(data, dict):
        return Rejection(number, "malformed_json", None, "a line must hold one JSON object", raw)
    if "fact" in data and "type" not in data:
        return _read_recorded(number, raw, data)
    try:
        return ParsedLine(parse_fact(data))
    except ValidationError as exc:
        field_path, reason = describe_validation_error(exc)
        return Rejection(number, "invalid_fact", field_path, reason, raw)


def _read_recorded(number: int, raw: str, data: dict[str, Any]) -> ParsedLine | Rejection:
    try:
        line = RecordedLine.model_validate(data)
    except ValidationError as exc:
        problems = [(".".join(str(p) for p in d["loc"]), d["msg"]) for d in exc.errors()]
        reason = describe_problems(problems)
        return Rejection(number, "invalid_fact", problems[0][0], reason, raw)
    try:
        incoming = parse_fact(line.fact)
    except ValidationError as exc:
        problems = [(f"fact.{path}", message) for path, message in fact_problems(exc)]
        reason = describe_problems(problems)
        return Rejection(number, "invalid_fact", problems[0][0], reason, raw)
    if line.event_id is not None and line.event_id != incoming.event_id:
        return Rejection(number, "event_id_mismatch", "event_id",
                         f"event_id {line.event_id} is not the fact's own "
                         f"({incoming.event_id}, from its source and external_id)", raw)
    return ParsedLine(incoming, line.hash)


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


ReadLine = tuple[int, str, "ParsedLine | Rejection"]
_END = object()


def _read_ahead(handle: IO[bytes], bar: tqdm[Any], *, chunk: int = 500,
                depth: int = 4) -> Iterator[ReadLine]:
    """read_line of every line, in file order, done by a thread a few chunks ahead.

    The thread runs while the writer waits for the store (the GIL is released during its
    I/O), so validating the next batch overlaps committing this one. It only reads and
    parses: what is recorded, and when, is decided by the caller as before. At most `depth`
    chunks wait in memory."""
    chunks: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                chunks.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    reader = threading.Thread(target=_parse_chunks, args=(handle, put, chunk),
                              name="ingest-parse", daemon=True)
    reader.start()
    try:
        while True:
            item = chunks.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            lines, size = item
            bar.update(size)
            yield from lines
    finally:
        stop.set()
        reader.join(timeout=5)


def _parse_chunks(handle: IO[bytes], put: Callable[[Any], bool], chunk: int) -> None:
    """The read-ahead thread: read_line of every line, handed over `chunk` lines at a time
    with the bytes they took; then _END, or the exception that stopped it."""
    try:
        parsed: list[ReadLine] = []
        size = 0
        for number, raw_bytes in enumerate(handle, start=1):
            size += len(raw_bytes)
            raw = raw_bytes.decode("utf-8", errors="replace").strip()
            if raw:
                parsed.append((number, raw, read_line(number, raw)))
            if len(parsed) >= chunk:
                if not put((parsed, size)):
                    return
                parsed, size = [], 0
        if (parsed or size) and not put((parsed, size)):
            return
        put(_END)
    except BaseException as exc:  # noqa: BLE001 - handed to the reading thread
        put(exc)


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
) -> IngestReport:
    """Ingest a JSONL file; `show_progress=None` shows a bar only on a terminal."""
    rejections_path = rejections_path or path.with_name(path.name + ".rejected.jsonl")
    sink = _RejectionSink(rejections_path)
    report = IngestReport(rejections_path=rejections_path)
    batch = _FileBatch(ledger, report, sink, json.dumps(str(path)), channel, clock, fault_point)
    bar_options: dict[str, Any] = {"unit": "B", "unit_scale": True, "desc": path.name}
    disable = None if show_progress is None else not show_progress  # None: off unless a TTY
    with fewer_gc_pauses(), path.open("rb") as handle, tqdm(
        total=path.stat().st_size, disable=disable, **bar_options
    ) as bar:
        try:
            for number, raw, parsed in _read_ahead(handle, bar):
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
