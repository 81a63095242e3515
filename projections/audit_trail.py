"""A learner's audit trail (学习档案): each fact, its hash, and the credit it made or lost.

Built from the learner's stored stream, which is itself the immutable trail; the effects
are computed when asked so that `as_of` shows exactly what the record said at that time.
A void shows on both facts: the voided fact's lines are marked removed and name the void,
and the void lists what it removed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel

from domain.credits.balance import Amount
from domain.credits.lines import CreditLine, RecordedFact, credit_lines
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


class TrailPage(BaseModel):
    learner_id: str
    as_of: datetime | None
    entries: list[TrailEntry]
    next_cursor: str | None


def _lines_by_fact(lines: Sequence[CreditLine]) -> dict[UUID, list[CreditLine]]:
    by_fact: dict[UUID, list[CreditLine]] = {}
    for line in lines:
        by_fact.setdefault(line.event_id, []).append(line)
    return by_fact


def _effects(pack: PolicyPack, lines: Sequence[CreditLine], status: str) -> list[Effect]:
    return [Effect(policy=pack.id, category=ln.category, amount=ln.amount, year=ln.year,
                   status=status) for ln in lines]


def audit_trail(trail: Sequence[TrailFact], packs: Sequence[PolicyPack],
                as_of: datetime | None = None) -> list[TrailEntry]:
    """Every fact recorded by `as_of` (all when None), oldest first, with its effects."""
    if as_of is not None:
        trail = [t for t in trail if t.fact.recorded_at is None or t.fact.recorded_at <= as_of]
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

