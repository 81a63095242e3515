"""One line of a JSONL fact file, read: a validated fact, or a rejection that names the line,
the field and the reason.

A line is a fact envelope, or a recorded fact as `studyledger export` writes it (and the relay
publishes it): `{"event_id", "position", "recorded_at", "hash", "prev_hash", "fact"}`. Only
the fact is recorded; the event id must be the fact's own, and the hash is kept to compare.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from domain.facts import (
    IncomingFact,
    decode_fact_json,
    describe_problems,
    fact_problems,
    parse_fact,
)


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


