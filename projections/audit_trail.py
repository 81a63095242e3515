"""A learner's audit trail (学习档案): each fact, its hash, and the credit it made or lost.

Built from the learner's stored stream, which is itself the immutable trail; the effects
are computed when asked. An auditor asks one of two questions, or both: `known_at` shows
exactly what the record said at that time (by recording time), `happened_by` what had
happened by then as the record knows it now (by occurred_at).
A void shows on both facts: the voided fact's lines are marked removed and name the void,
and the void lists what it removed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from domain.credits.balance import Amount
from domain.credits.lines import CreditLine, RecordedFact, credit_lines
from domain.errors import InvalidMomentError
from domain.policy.pack import PolicyPack


@dataclass(frozen=True)
class TrailFact:
    """A stored fact with its place in the chain."""

    version: int
    fact: RecordedFact
    hash: str
    prev_hash: str


class Effect(BaseModel):
    policy: str
    category: str
    amount: Amount
    year: int
    status: str  # "counted" | "removed"


class TrailEntry(BaseModel):
    version: int
    event_id: UUID
    recorded_at: datetime | None
    envelope: dict[str, Any]
    hash: str
    prev_hash: str
    effects: list[Effect]
    voided_by: UUID | None = None


class Asked(BaseModel):
    """Which question the trail answers; both None: everything known now."""

    known_at: datetime | None = None
    happened_by: datetime | None = None


class TrailPage(BaseModel):
    learner_id: str
    as_of: datetime | None  # the same as asked.known_at, for clients written before it
    asked: Asked = Asked()
    entries: list[TrailEntry]
    next_cursor: str | None
    note: str | None = None  # why the trail is empty, when it is


def parse_moment(text: str, zone: str, *, field: str) -> datetime:
    """An ISO 8601 time with its zone, or a plain date read as midnight in `zone`."""
    try:
        if len(text) == 10:
            moment = datetime.combine(date.fromisoformat(text), time(), ZoneInfo(zone))
        else:
            moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            raise InvalidMomentError(
                f"{field} {text[:40]!r} needs a time zone, e.g. 2024-06-30T00:00:00+08:00, "
                f"or a plain date (2024-06-30, midnight {zone})", field=field)
        # compared with stored UTC times: one that cannot be put in UTC is no time at all
        moment.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise InvalidMomentError(
            f"{field} {text[:40]!r} is neither an ISO 8601 time with a zone "
            "(2025-01-01T00:00:00+08:00) nor a date (2025-01-01)", field=field) from exc
    return moment


def _occurred(fact: RecordedFact) -> datetime:
    return datetime.fromisoformat(fact.fact["occurred_at"])


def _lines_by_fact(lines: Sequence[CreditLine]) -> dict[UUID, list[CreditLine]]:
    by_fact: dict[UUID, list[CreditLine]] = {}
    for line in lines:
        by_fact.setdefault(line.event_id, []).append(line)
    return by_fact


def _effects(pack: PolicyPack, lines: Sequence[CreditLine], status: str) -> list[Effect]:
    return [Effect(policy=pack.id, category=ln.category, amount=ln.amount, year=ln.year,
                   status=status) for ln in lines]


def audit_trail(trail: Sequence[TrailFact], packs: Sequence[PolicyPack],
                known_at: datetime | None = None,
                happened_by: datetime | None = None) -> list[TrailEntry]:
    """Every fact recorded by `known_at` that occurred by `happened_by` (None: no limit),
    oldest recorded first, with its effects."""
    if known_at is not None:
        trail = [t for t in trail
                 if t.fact.recorded_at is None or t.fact.recorded_at <= known_at]
    if happened_by is not None:
        # A void that happened later has not happened yet: its target still counts.
        trail = [t for t in trail if _occurred(t.fact) <= happened_by]
    facts = [t.fact for t in trail]
    voided_by = {UUID(f.payload["target_event_id"]): f.event_id
                 for f in facts if f.type == "record.voided"}
    effects: dict[UUID, list[Effect]] = {f.event_id: [] for f in facts}
    for pack in packs:
        for event_id, lines in _lines_by_fact(credit_lines(pack, facts)).items():
            effects[event_id] += _effects(pack, lines, "counted")
        for index, fact in enumerate(facts):
            if fact.type != "record.voided":
                continue
            target = UUID(fact.payload["target_event_id"])
            # What the target counted just before this void was recorded.
            before = _lines_by_fact(credit_lines(pack, facts[:index])).get(target, [])
            effects[target] += _effects(pack, before, "removed")
            effects[fact.event_id] += _effects(
                pack, [CreditLine(ln.event_id, ln.category, -ln.amount, ln.year)
                       for ln in before], "removed")
    return [
        TrailEntry(
            version=t.version, event_id=t.fact.event_id, recorded_at=t.fact.recorded_at,
            envelope=t.fact.fact, hash=t.hash, prev_hash=t.prev_hash,
            effects=effects[t.fact.event_id], voided_by=voided_by.get(t.fact.event_id),
        )
        for t in trail
    ]



def empty_trail_note(trail: Sequence[TrailFact], asked: Asked) -> str:
    """Why nothing answers the question: the first recording or occurrence is later."""
    if not trail:
        return "the archive holds no facts"
    first_recorded = min((t.fact.recorded_at for t in trail if t.fact.recorded_at), default=None)
    if asked.known_at is not None and first_recorded and first_recorded > asked.known_at:
        return (f"nothing was recorded by known_at {asked.known_at.isoformat()}: the first "
                f"fact was recorded at {first_recorded.isoformat()}. known_at is recording "
                "time; to ask what had happened by a date, use happened_by")
    first_occurred = min(_occurred(t.fact) for t in trail)
    return (f"nothing had happened by happened_by {asked.happened_by.isoformat()}: the "
            f"earliest fact occurred at {first_occurred.isoformat()}"
            if asked.happened_by is not None else "no fact answers the question")
