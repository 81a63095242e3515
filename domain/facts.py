"""The v1 fact envelope and every payload, as strict pydantic models.

The same models validate HTTP bodies, Kafka messages and JSONL lines. Unknown fields are
rejected, never ignored. A validated envelope is turned into its canonical form (UTC time,
normalised decimals) before anything is hashed or stored, so the same fact sent twice in
different spellings ("12.5" vs "12.50", +08:00 vs Z) is recognised as the same fact.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    TypeAdapter,
    ValidationError,
)
from pydantic_core import PydanticCustomError

from domain.identity import fact_event_id


def canonical_decimal(value: Decimal) -> str:
    """Shortest exact spelling of a decimal: 12.50 -> "12.5", 100 -> "100", -0 -> "0"."""
    if value == 0:
        return "0"
    return format(value.normalize(), "f")


# Quantities are taken as sent: any finite JSON number (integer or float, in any spelling) or
# a decimal string, kept exactly and stored in canonical_decimal's spelling. Rounding is the
# policy pack's business, never the envelope's. What is refused is what cannot be a real
# measurement or would make the stored spelling unbounded:
MAX_SIGNIFICANT_DIGITS = 28  # decimal's default precision: normalize() never rounds a value
MAX_DECIMAL_PLACES = 40  # float noise (0.1 + 0.2 - 0.3 = 5.551115123125783e-17) still fits
MAX_HOURS = 10_000  # one fact: more than a year of days and nights
MAX_MINUTES = 600_000  # the same 10,000 hours
MAX_SCORE = 10_000  # scores run to 100, 150, 750 or 1000 on the scales in use
MAX_AMOUNT = 10_000  # an adjustment of credits or hours, either sign


def _exact_enough(value: Decimal) -> Decimal:
    """Refuse a quantity whose exact spelling would be absurdly long (1e-100000 would print
    100,000 digits) or whose digits decimal arithmetic would silently round."""
    _, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)  # NaN and infinities are refused before this runs
    significant = len(digits)
    while significant > 1 and digits[significant - 1] == 0:
        significant -= 1
    exponent += len(digits) - significant
    if value != 0 and significant > MAX_SIGNIFICANT_DIGITS:
        raise PydanticCustomError(
            "too_many_digits",
            "Number should have at most {limit} significant digits",
            {"limit": MAX_SIGNIFICANT_DIGITS})
    if value != 0 and -exponent > MAX_DECIMAL_PLACES:
        raise PydanticCustomError(
            "too_many_decimal_places",
            "Number should have no digit beyond decimal place {limit}",
            {"limit": MAX_DECIMAL_PLACES})
    return value


_CANONICAL = PlainSerializer(canonical_decimal, return_type=str, when_used="json")
Hours = Annotated[
    Decimal, Field(ge=0, le=MAX_HOURS), AfterValidator(_exact_enough), _CANONICAL
]
Minutes = Annotated[
    Decimal, Field(ge=0, le=MAX_MINUTES), AfterValidator(_exact_enough), _CANONICAL
]
Score = Annotated[
    Decimal, Field(ge=0, le=MAX_SCORE), AfterValidator(_exact_enough), _CANONICAL
]
Share = Annotated[Decimal, Field(ge=0, le=1), AfterValidator(_exact_enough), _CANONICAL]
SignedAmount = Annotated[
    Decimal, Field(ge=-MAX_AMOUNT, le=MAX_AMOUNT), AfterValidator(_exact_enough), _CANONICAL
]

# Ids travel in URL paths (/v1/learners/{id}), file names and log lines, and are compared
# byte for byte, so they hold no whitespace, nothing invisible and nothing a URL or a path
# gives a meaning to. Every other character (letters and digits of any script,
# - _ . : @ + ~ and the rest of printable ASCII punctuation) is allowed.
ID_FORBIDDEN_ASCII = re.compile(r"[\x00-\x20\x7f/\\?#%]")
ID_FORBIDDEN_PUNCTUATION = frozenset("/\\?#%")
# Free text may hold line feeds and tabs, never other control characters (a NUL cannot be
# stored in PostgreSQL text) nor a lone surrogate (it has no UTF-8 spelling to hash).
TEXT_FORBIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def _character(char: str) -> str:
    shown = f" {char!r}" if char.isprintable() else ""
    return f"U+{ord(char):04X}{shown}"


def _id_character_refused(value: str) -> str | None:
    if value.isascii():
        found = ID_FORBIDDEN_ASCII.search(value)
        return found.group() if found else None
    for char in value:
        category = unicodedata.category(char)
        # Z*: spaces and line separators; Cc, Cf, Cs: controls, invisible format characters
        # (zero-width space, bidi overrides) and lone surrogates.
        if char in ID_FORBIDDEN_PUNCTUATION or category[0] == "Z" or category in ("Cc", "Cf", "Cs"):
            return char
    return None


def _valid_id(value: str) -> str:
    if (char := _id_character_refused(value)) is not None:
        raise PydanticCustomError(
            "id_character",
            "An id may not contain {char}: no whitespace, control or invisible characters, "
            "nor / \\ ? # %",
            {"char": _character(char)})
    if value in (".", ".."):
        raise PydanticCustomError("id_dots", "An id may not be . or ..")
    return value


def _valid_text(value: str) -> str:
    if found := TEXT_FORBIDDEN.search(value):
        raise PydanticCustomError(
            "text_character",
            "Text may not contain {char}: line feeds and tabs are the only control "
            "characters allowed", {"char": _character(found.group())})
    return value


Ident = Annotated[str, StringConstraints(min_length=1, max_length=128), AfterValidator(_valid_id)]
# The source is joined to external_id with ":" to form the fact key, so it may not hold one.
SourceName = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[^:]+$"),
    AfterValidator(_valid_id),
]
Text = Annotated[str, StringConstraints(min_length=1, max_length=500), AfterValidator(_valid_text)]
OptionalText = Annotated[str, StringConstraints(max_length=2000), AfterValidator(_valid_text)]
Level = Literal["unit", "district", "city", "province", "national"]
Rank = Literal["county_division_and_above", "township_section_and_below"]


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

fact_adapter: TypeAdapter[LearnerFact | OrgFact] = TypeAdapter(Fact)


def canonical_json(value: Any) -> str:
    """The one serialisation that is hashed: sorted keys, no spaces, UTF-8 kept as is."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class IncomingFact:
    """A validated fact on its way in: the typed envelope, its identity and canonical form."""

    envelope: LearnerFact | OrgFact
    event_id: UUID
    canonical: dict[str, Any]
    canonical_text: str  # canonical_json(canonical), kept: it is hashed twice
    digest: str

    @property
    def type(self) -> str:
        return self.envelope.type


# Optional payload fields added after facts were first recorded: absent means not sent.
_ADDED_OPTIONAL_FIELDS = frozenset({"course_title"})


def _canonical_payload(payload: Payload) -> dict[str, Any]:
    dumped: dict[str, Any] = payload.model_dump(mode="json")
    for name in _ADDED_OPTIONAL_FIELDS & dumped.keys():
        if dumped[name] is None:
            del dumped[name]
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
    canonical_text = canonical_json(canonical)
    return IncomingFact(
        envelope=envelope,
        event_id=fact_event_id(envelope.source, envelope.external_id),
        canonical=canonical,
        canonical_text=canonical_text,
        digest=hashlib.sha256(canonical_text.encode()).hexdigest(),
    )


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


def _json_integer(text: str) -> int | Decimal:
    # Python refuses to make an int of more than 4300 digits (ValueError, not a decode
    # error); as a Decimal such a number reaches validation and is refused by its bounds.
    return int(text) if len(text) <= 64 else Decimal(text)


def decode_fact_json(text: str | bytes) -> Any:
    """Decode one JSON fact as sent: fractions become exact Decimals, never binary floats, so
    0.12345678901234567890123 is kept to its last digit. Raises json.JSONDecodeError (and
    UnicodeDecodeError for bytes that are not UTF-8)."""
    return json.loads(text, parse_float=Decimal, parse_int=_json_integer)


def parse_fact(data: Any) -> IncomingFact:
    """Validate a decoded JSON object as a fact. Raises pydantic.ValidationError."""
    return prepare(fact_adapter.validate_python(data))


def parse_stored(canonical: dict[str, Any]) -> LearnerFact | OrgFact:
    """Re-type a stored canonical fact (for the credit calculus)."""
    return fact_adapter.validate_python(canonical)
