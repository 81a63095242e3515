"""Facts that arrived before what they depend on wait here, durably, until it arrives.

Platforms send facts out of order (Kafka partitions interleave org and learner facts; a
review can overtake its submission). Such a fact is parked in the store in the same
transaction as its batch, keyed by what it waits for, and re-applied as soon as a later
batch records that prerequisite. One still waiting after the park timeout becomes a dead
letter with its reason; `redrive` submits dead letters again once the cause is fixed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Protocol
from uuid import UUID

from domain.archive import submission_key
from domain.errors import StudyLedgerError
from domain.facts import ORG_FACT_TYPES, IncomingFact


@dataclass(frozen=True)
class ParkedFact:
    """A fact that is not recorded yet, with why and where it came from."""

    event_id: UUID
    fact_text: str  # the canonical JSON of the fact, exactly as it would be stored
    digest: str
    waits_for: str
    code: str
    field: str | None
    reason: str
    channel: str
    scope: str | None  # the writer's org subtree, checked again when the fact is released
    origin: str | None  # JSON: where it was read (Kafka topic/partition/offset, file line)
    parked_at: datetime
    seq: int | None = None  # arrival order; kept when a fact is parked again

    def because(self, error: StudyLedgerError, waits_for: str = "") -> ParkedFact:
        return replace(self, waits_for=waits_for or self.waits_for, code=error.code,
                       field=error.field, reason=error.message)


@dataclass(frozen=True)
class DeadLetterRecord:
    """A fact given up on: parked past the timeout, or refused when it was released."""

    id: int
    fact: ParkedFact
    dead_at: datetime
    published: bool
    resolved: bool


@dataclass
class ParkingChanges:
    """What one batch changes in the parking tables, written in the batch's transaction."""

    park: list[ParkedFact] = field(default_factory=list)
    release: list[UUID] = field(default_factory=list)
    dead: list[ParkedFact] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.park or self.release or self.dead)


class ParkingIndex(Protocol):
    """The store's parking and dead-letter tables (implemented by the recorders)."""

    def parked_count(self) -> int: ...

    def find_parked(self, event_ids: Sequence[UUID]) -> dict[UUID, ParkedFact]: ...

    def parked_waiting_for(self, keys: Sequence[str]) -> list[ParkedFact]:
        """Parked facts waiting for any of `keys`, in arrival order."""

    def list_parked(self, limit: int) -> list[ParkedFact]: ...

    def write_parking(self, changes: ParkingChanges) -> None:
        """Apply parking changes alone (a batch that stored no event)."""

    def expire_parked(self, parked_before: datetime, now: datetime) -> list[ParkedFact]:
        """Move facts parked before the cutoff to the dead letters, in one transaction."""

    def list_dead_letters(self, *, unpublished_channel: str | None = None,
                          unresolved: bool = False, limit: int = 1000
                          ) -> list[DeadLetterRecord]: ...

    def mark_dead_letters(self, ids: Sequence[int], *, published: bool = False,
                          resolved: bool = False) -> None: ...


def keys_provided(incoming: IncomingFact) -> list[str]:
    """The wait keys a recorded fact satisfies."""
    canonical = incoming.canonical
    payload = canonical["payload"]
    if incoming.type in ORG_FACT_TYPES:
        return [f"org:{payload['org_id']}"] if incoming.type == "org.registered" else []
    learner_id = canonical["learner_id"]
    keys = [f"event:{incoming.event_id}"]
    if incoming.type == "learner.registered":
        keys.append(f"learner:{learner_id}")
    elif incoming.type == "assignment.submitted":
        keys.append(submission_key(learner_id, "assignment", payload["assignment_id"]))
    elif incoming.type == "declaration.submitted":
        keys.append(submission_key(learner_id, "declaration", payload["declaration_id"]))
    return keys
