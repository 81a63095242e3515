"""The v1 fact envelope and every payload, as strict pydantic models.

The same models validate HTTP bodies, Kafka messages and JSONL lines. Unknown fields are
rejected, never ignored. A validated envelope is turned into its canonical form (UTC time,
normalised decimals) before anything is hashed or stored, so the same fact sent twice in
different spellings ("12.5" vs "12.50", +08:00 vs Z) is recognised as the same fact.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, NamedTuple
from uuid import UUID

import orjson
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
)

from domain.fact_fields import (
    Hours,
    Ident,
    Level,
    Minutes,
    OptionalText,
    Rank,
    Score,
    Share,
    SignedAmount,
    SourceName,
    Text,
    canonical_decimal,
)
from domain.fact_json import (
    canonical_fact_bytes,
    canonical_json,
    canonical_time,
    decode_fact_json,
)
from domain.identity import fact_event_id

# Imported from here by the rest of the code: the fact, its wire form, its problems.
__all__ = ["FACT_TYPES", "ORG_FACT_TYPES", "IncomingFact", "canonical_json", "canonical_time",
           "decode_fact_json", "describe_problems", "fact_problems", "parse_fact", "prepare"]


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LearnerRegisteredPayload(Payload):
    name: Text
    org_id: Ident
    rank: Rank
    category: Ident


class LearnerTransferredPayload(Payload):
    org_id: Ident


class StudySessionRecordedPayload(Payload):
    course_id: Ident
    course_hours: Hours
    required: bool
    minutes: Minutes
    progress: Share
    # The course's name as the platform shows it, for certificates. Optional and left out
    # of the canonical form when absent, so facts sent without it (every fact recorded
    # before it existed) keep their content digest and hash: no new event version needed.
    course_title: Text | None = None


class TrainingAttendedPayload(Payload):
    program_id: Ident
    kind: Literal["qualification", "advancement", "advanced_seminar", "thematic", "induction"]
    hours: Hours
    leave_hours: Hours


class ExamGradedPayload(Payload):
    exam_id: Ident
    score: Score
    pass_score: Score
    attempt: int = Field(ge=1, le=1000)


class AssignmentSubmittedPayload(Payload):
    assignment_id: Ident
    kind: Literal["reflection", "research_report", "paper"]
    title: Text


class AssignmentReviewedPayload(Payload):
    assignment_id: Ident
    reviewer_id: Ident
    decision: Literal["accepted", "rejected"]
    score: Score


class DeclarationSubmittedPayload(Payload):
    declaration_id: Ident
    activity: Literal[
        "theory_group_study", "unit_political_study", "degree_education", "qualification_exam",
        "other",
    ]
    hours: Hours
    evidence: OptionalText


class DeclarationReviewedPayload(Payload):
    declaration_id: Ident
    reviewer_id: Ident
    decision: Literal["approved", "rejected"]
    approved_hours: Hours


class AchievementRecordedPayload(Payload):
    kind: Literal["article", "research_report", "book"]
    level: Level
    title: Text


class AwardGrantedPayload(Payload):
    award_id: Ident
    level: Level
    title: Text


class PenaltyRecordedPayload(Payload):
    severity: Literal["minor", "major", "serious"]
    reason: Text


class CreditsAdjustedPayload(Payload):
    category: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z_]{0,63}$")]
    amount: SignedAmount
    reason: Text


class RecordVoidedPayload(Payload):
    target_event_id: UUID
    reason: Text


class OrgRegisteredPayload(Payload):
    org_id: Ident
    name: Text
    parent_id: Ident | None


class OrgBoardPublishedPayload(Payload):
    org_id: Ident
    published: bool


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    source: SourceName
    external_id: Ident
    occurred_at: AwareDatetime
    actor: Text


class LearnerEnvelope(_Envelope):
    learner_id: Ident


class OrgEnvelope(_Envelope):
    # Org facts carry no learner; an explicit null is tolerated, a value is not.
    learner_id: None = None


class LearnerRegistered(LearnerEnvelope):
    type: Literal["learner.registered"]
    payload: LearnerRegisteredPayload


class LearnerTransferred(LearnerEnvelope):
    type: Literal["learner.transferred"]
    payload: LearnerTransferredPayload


class StudySessionRecorded(LearnerEnvelope):
    type: Literal["study_session.recorded"]
    payload: StudySessionRecordedPayload


class TrainingAttended(LearnerEnvelope):
    type: Literal["training.attended"]
    payload: TrainingAttendedPayload


class ExamGraded(LearnerEnvelope):
    type: Literal["exam.graded"]
    payload: ExamGradedPayload


class AssignmentSubmitted(LearnerEnvelope):
    type: Literal["assignment.submitted"]
    payload: AssignmentSubmittedPayload


class AssignmentReviewed(LearnerEnvelope):
    type: Literal["assignment.reviewed"]
    payload: AssignmentReviewedPayload


class DeclarationSubmitted(LearnerEnvelope):
    type: Literal["declaration.submitted"]
    payload: DeclarationSubmittedPayload


class DeclarationReviewed(LearnerEnvelope):
    type: Literal["declaration.reviewed"]
    payload: DeclarationReviewedPayload


class AchievementRecorded(LearnerEnvelope):
    type: Literal["achievement.recorded"]
    payload: AchievementRecordedPayload


class AwardGranted(LearnerEnvelope):
    type: Literal["award.granted"]
    payload: AwardGrantedPayload


class PenaltyRecorded(LearnerEnvelope):
    type: Literal["penalty.recorded"]
    payload: PenaltyRecordedPayload


class CreditsAdjusted(LearnerEnvelope):
    type: Literal["credits.adjusted"]
    payload: CreditsAdjustedPayload


class RecordVoided(LearnerEnvelope):
    type: Literal["record.voided"]
    payload: RecordVoidedPayload


class OrgRegistered(OrgEnvelope):
    type: Literal["org.registered"]
    payload: OrgRegisteredPayload


class OrgBoardPublished(OrgEnvelope):
    type: Literal["org.board_published"]
    payload: OrgBoardPublishedPayload


LearnerFact = (
    LearnerRegistered
    | LearnerTransferred
    | StudySessionRecorded
    | TrainingAttended
    | ExamGraded
    | AssignmentSubmitted
    | AssignmentReviewed
    | DeclarationSubmitted
    | DeclarationReviewed
    | AchievementRecorded
    | AwardGranted
    | PenaltyRecorded
    | CreditsAdjusted
    | RecordVoided
)
OrgFact = OrgRegistered | OrgBoardPublished
Fact = Annotated[LearnerFact | OrgFact, Field(discriminator="type")]

FACT_TYPES: tuple[str, ...] = tuple(
    cls.model_fields["type"].annotation.__args__[0]
    for cls in (*LearnerFact.__args__, *OrgFact.__args__)
)
ORG_FACT_TYPES = frozenset({"org.registered", "org.board_published"})
_FACT_TYPE_NAMES = {name: name for name in FACT_TYPES}

fact_adapter: TypeAdapter[LearnerFact | OrgFact] = TypeAdapter(Fact)


class FactHeader(NamedTuple):
    """The envelope fields read after validation (type, sender, time), for a fact validated
    in another process: rebuilt from its canonical dict, while the typed envelope and its
    payload model stay where they were made."""

    type: str
    source: str
    external_id: str
    learner_id: str | None
    occurred_at: datetime
    actor: str


@dataclass(frozen=True)
class IncomingFact:
    """A validated fact on its way in: the typed envelope (or, validated elsewhere, its
    header), its identity and canonical form."""

    envelope: LearnerFact | OrgFact | FactHeader
    event_id: UUID
    canonical: dict[str, Any]
    canonical_text: str  # canonical_json(canonical), kept: it is hashed twice
    digest: str
    canonical_bytes: bytes = b""  # canonical_text as UTF-8, when the caller has it

    @property
    def type(self) -> str:
        return self.envelope.type


# Optional payload fields added after facts were first recorded: absent means not sent.
_ADDED_OPTIONAL_FIELDS = frozenset({"course_title"})


def _canonical_payload(payload: Payload) -> dict[str, Any]:
    """payload.model_dump(mode="json") less the added optional fields left out, read straight
    off the validated fields: every payload field is a str (or Literal), bool, int, None, a
    UUID (dumped as str) or one of the decimal types (dumped with canonical_decimal)."""
    dumped: dict[str, Any] = {}
    for name, value in payload.__dict__.items():
        kind = type(value)
        if kind is Decimal:
            value = canonical_decimal(value)
        elif kind is UUID:
            value = str(value)
        elif value is None and name in _ADDED_OPTIONAL_FIELDS:
            continue
        dumped[name] = value
    return dumped


def prepare(envelope: LearnerFact | OrgFact) -> IncomingFact:
    """Compute a validated envelope's event id, canonical dict and content digest."""
    canonical = {
        "type": envelope.type,
        "source": envelope.source,
        "external_id": envelope.external_id,
        "learner_id": envelope.learner_id,
        "occurred_at": canonical_time(envelope.occurred_at),
        "actor": envelope.actor,
        "payload": _canonical_payload(envelope.payload),
    }
    canonical_bytes = canonical_fact_bytes(canonical)
    return IncomingFact(
        envelope=envelope,
        event_id=fact_event_id(envelope.source, envelope.external_id),
        canonical=canonical,
        canonical_text=canonical_bytes.decode(),
        digest=hashlib.sha256(canonical_bytes).hexdigest(),
        canonical_bytes=canonical_bytes,
    )


# A validated fact as it crosses to another process: the canonical dict as JSON (in its own
# key order, which the stored event keeps), the canonical bytes, the digest, the event id.
WireFact = tuple[bytes, bytes, str, bytes]


def to_wire(incoming: IncomingFact) -> WireFact | IncomingFact:
    """A validated fact in a form that crosses a process boundary at a fiftieth of the cost
    of pickling its models; the fact itself when its canonical dict will not go to JSON."""
    try:
        ordered = orjson.dumps(incoming.canonical)
    except orjson.JSONEncodeError:
        return incoming
    canonical_bytes = incoming.canonical_bytes or incoming.canonical_text.encode()
    return ordered, canonical_bytes, incoming.digest, incoming.event_id.bytes


def from_wire(wire: WireFact | IncomingFact) -> IncomingFact:
    """The fact to_wire sent: the same canonical dict, text, digest and id, with a header
    for an envelope (canonical_time is exact, so occurred_at is the same instant)."""
    if isinstance(wire, IncomingFact):
        return wire
    ordered, canonical_bytes, digest, event_id = wire
    canonical = orjson.loads(ordered)
    # The one shared string per type, as validation gives it: archives keep every fact's
    # type in their index, and a copy per fact was ~70 bytes each (70 MiB a million facts).
    canonical["type"] = _FACT_TYPE_NAMES.get(canonical["type"], canonical["type"])
    header = FactHeader(canonical["type"], canonical["source"], canonical["external_id"],
                        canonical["learner_id"], datetime.fromisoformat(
                            canonical["occurred_at"]), canonical["actor"])
    return IncomingFact(header, UUID(bytes=event_id), canonical, canonical_bytes.decode(),
                        digest, canonical_bytes)


def fact_problems(error: ValidationError) -> list[tuple[str, str]]:
    """(dotted field path, message) per problem of an invalid fact, the same for HTTP, Kafka
    and JSONL. The discriminated union puts the fact type first in every path; it is left
    out ("payload.hours", not "exam.graded.payload.hours")."""
    problems = []
    for detail in error.errors():
        loc = [str(part) for part in detail["loc"]]
        if loc and loc[0] in FACT_TYPES:
            loc = loc[1:]
        if detail["type"] in ("union_tag_invalid", "union_tag_not_found"):
            loc = ["type"]
        problems.append((".".join(loc) or "(envelope)", detail["msg"]))
    return problems


def describe_problems(problems: list[tuple[str, str]], limit: int | None = None) -> str:
    """The one-line text of an invalid fact's problems ("field: message; ..."), the same on
    every channel; `limit` keeps an answer or a message header short."""
    return "; ".join(f"{path}: {message}" for path, message in problems[:limit])


def parse_fact(data: Any) -> IncomingFact:
    """Validate a decoded JSON object as a fact. Raises pydantic.ValidationError."""
    return prepare(fact_adapter.validate_python(data))

