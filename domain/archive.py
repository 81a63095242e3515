"""Aggregates: one learning archive per learner, one unit per org.

Every fact becomes one event in its aggregate's stream, linked into the stream's hash chain.
Guard checks run before an event is triggered, so a rejected fact changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, CanMutateAggregate

from domain.chain import GENESIS_HASH, link_hash_of_text
from domain.errors import (
    AlreadyReviewedError,
    AlreadySubmittedError,
    AlreadyVoidedError,
    ApprovedHoursExceedDeclaredError,
    LearnerAlreadyRegisteredError,
    NotSubmittedError,
    NotVoidableError,
    OrgAlreadyRegisteredError,
    VoidTargetUnknownError,
)
from domain.facts import IncomingFact
from domain.identity import learner_archive_id, org_unit_id


def submission_key(learner_id: str, kind: str, item_id: str) -> str:
    """The wait key of an assignment or declaration submission (see PrerequisiteMissingError)."""
    return f"{kind}:{learner_id}:{item_id}"


# Registrations and transfers shape who the learner is; they are corrected by a new fact,
# not withdrawn. A void is final and cannot itself be voided.
NOT_VOIDABLE = frozenset({"learner.registered", "learner.transferred", "record.voided"})


def _upcast_add_channel(state: dict[str, Any]) -> None:
    # v1 events were stored before the ingest channel was recorded.
    state["channel"] = "unknown"


@dataclass(slots=True)  # not frozen: made once per fact, its __init__ would cost ~1.5 us
class PendingFact:
    """A fact applied to its aggregate and not saved yet: the fields of its FactRecorded
    event, as plain values. The write path spells the stored row straight from them; the
    library's event object is built only for a path that needs one (collect_events)."""

    version: int
    timestamp: datetime
    event_id: UUID
    fact: dict[str, Any]
    prev_hash: str
    hash: str
    channel: str

    def event_state(self) -> dict[str, Any]:
        """The stored state, keys in the order the library's mapper writes them."""
        return {"timestamp": self.timestamp, "event_id": self.event_id, "fact": self.fact,
                "prev_hash": self.prev_hash, "hash": self.hash, "channel": self.channel}


class ChainedAggregate(Aggregate):
    """An aggregate whose events each carry one fact and one link of a hash chain.

    A fact appended to an existing aggregate does not go through the library's
    trigger_event: its event object, and the mapper's reading of it, were a fifth of the
    batch writer's time. The aggregate is mutated as the event's apply() and mutate() would
    (chain head, state, version, modified_on) and the fact waits as a PendingFact;
    collect_events() still hands the library its event objects, in version order.
    """

    class Opened(Aggregate.Created):
        class_version = 2
        upcast_v1_v2 = staticmethod(_upcast_add_channel)

        event_id: UUID
        fact: dict[str, Any]
        prev_hash: str
        hash: str
        channel: str

    class FactRecorded(Aggregate.Event):
        class_version = 2
        upcast_v1_v2 = staticmethod(_upcast_add_channel)

        event_id: UUID
        fact: dict[str, Any]
        prev_hash: str
        hash: str
        channel: str

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, ChainedAggregate)
            aggregate.last_hash = self.hash
            aggregate.absorb(self.event_id, self.fact)

    def __init__(
        self, event_id: UUID, fact: dict[str, Any], prev_hash: str, hash: str, channel: str
    ) -> None:
        self.last_hash = hash
        self.absorb(event_id, fact)

    @classmethod
    def open_with(cls, aggregate_id: UUID, incoming: IncomingFact, channel: str) -> Any:
        return cls._create(
            cls.Opened,
            id=aggregate_id,
            event_id=incoming.event_id,
            fact=incoming.canonical,
            prev_hash=GENESIS_HASH,
            hash=link_hash_of_text(GENESIS_HASH, incoming.canonical_text),
            channel=channel,
        )

    def append(self, incoming: IncomingFact, channel: str) -> None:
        pending = PendingFact(
            self.version + 1, self.FactRecorded.create_timestamp(), incoming.event_id,
            incoming.canonical, self.last_hash,
            link_hash_of_text(self.last_hash, incoming.canonical_text), channel)
        self.last_hash = pending.hash
        self.absorb(pending.event_id, pending.fact)
        self.version = pending.version
        self.modified_on = pending.timestamp
        self.__dict__.setdefault("_pending_facts", []).append(pending)

    def collect_pending_facts(self) -> list[PendingFact]:
        """The facts appended since the last save, as plain values (the library's pending
        events, such as an Opened, are collected apart with collect_library_events)."""
        pending: list[PendingFact] = self.__dict__.pop("_pending_facts", [])
        return pending

    def collect_library_events(self) -> Sequence[CanMutateAggregate[UUID]]:
        """The pending events triggered the library's way (an Opened), without the facts
        appended since."""
        return super().collect_events()

    def collect_events(self) -> Sequence[CanMutateAggregate[UUID]]:
        events = [*super().collect_events(), *(
            self.FactRecorded(originator_id=self.id, originator_version=p.version,
                              **p.event_state())
            for p in self.collect_pending_facts())]
        events.sort(key=lambda event: event.originator_version)
        return events

    def absorb(self, event_id: UUID, fact: dict[str, Any]) -> None:
        raise NotImplementedError


@dataclass
class ReviewedItem:
    """An assignment or declaration: its submission, and its review if any."""

    submission_id: UUID
    hours: Decimal = Decimal(0)
    review_id: UUID | None = None
    decision: str | None = None


@dataclass
class _ArchiveIndex:
    facts: dict[UUID, tuple[str, str | None]] = field(default_factory=dict)
    voided: set[UUID] = field(default_factory=set)
    assignments: dict[str, ReviewedItem] = field(default_factory=dict)
    declarations: dict[str, ReviewedItem] = field(default_factory=dict)


class LearnerArchive(ChainedAggregate):
    """The learning archive (学习档案) of one cadre.

    State (set by absorb, not annotated: the aggregate metaclass would make annotations
    into constructor fields): learner_id, name, org_id, rank and an index of its facts.
    """

    @staticmethod
    def id_for(learner_id: str) -> UUID:
        return learner_archive_id(learner_id)

    @classmethod
    def register(cls, incoming: IncomingFact, channel: str) -> LearnerArchive:
        assert incoming.type == "learner.registered"
        learner_id = incoming.canonical["learner_id"]
        archive: LearnerArchive = cls.open_with(cls.id_for(learner_id), incoming, channel)
        return archive

    def record(self, incoming: IncomingFact, channel: str) -> None:
        """Append one fact after checking the archive's rules."""
        self._check(incoming.type, incoming.canonical["payload"])
        self.append(incoming, channel)

    def _check(self, fact_type: str, payload: dict[str, Any]) -> None:
        check = _ARCHIVE_CHECKS.get(fact_type)
        if check is not None:
            getattr(self, check)(payload)

    def _check_registration(self, payload: dict[str, Any]) -> None:
        raise LearnerAlreadyRegisteredError(f"learner {self.learner_id} is already registered")

    def _check_assignment_submission(self, payload: dict[str, Any]) -> None:
        item = self._index.assignments.get(payload["assignment_id"])
        if item is None or item.decision == "rejected":
            return  # new work, or a resubmission after a rejection
        state = "accepted" if item.decision == "accepted" else "awaiting review"
        raise AlreadySubmittedError(
            f"assignment {payload['assignment_id']} is already submitted ({state})",
            field="payload.assignment_id",
        )

    def _reviewed_item(self, kind: str, items: dict[str, Any], payload: dict[str, Any]) -> Any:
        """The submitted assignment or declaration a review is of. A review before its
        submission waits for it; a second review of one submission is refused."""
        item_id = payload[f"{kind}_id"]
        item = items.get(item_id)
        if item is None:
            raise NotSubmittedError(
                f"{kind} {item_id} is not submitted yet",
                waits_for=submission_key(self.learner_id, kind, item_id),
                missing=f"submission of {kind} {item_id}",
                field=f"payload.{kind}_id",
            )
        if item.review_id is not None:
            raise AlreadyReviewedError(
                f"{kind} {item_id} was already reviewed ({item.decision})",
                field=f"payload.{kind}_id",
            )
        return item

    def _check_assignment_review(self, payload: dict[str, Any]) -> None:
        self._reviewed_item("assignment", self._index.assignments, payload)

    def _check_declaration_submission(self, payload: dict[str, Any]) -> None:
        if payload["declaration_id"] in self._index.declarations:
            raise AlreadySubmittedError(
                f"declaration {payload['declaration_id']} is already submitted",
                field="payload.declaration_id",
            )

    def _check_declaration_review(self, payload: dict[str, Any]) -> None:
        item = self._reviewed_item("declaration", self._index.declarations, payload)
        if Decimal(payload["approved_hours"]) > item.hours:
            raise ApprovedHoursExceedDeclaredError(
                f"approved_hours {payload['approved_hours']} exceed the "
                f"{item.hours} hours declared"
            )

    def _check_void(self, payload: dict[str, Any]) -> None:
        target = UUID(payload["target_event_id"])
        known = self._index.facts.get(target)
        if known is None:
            raise VoidTargetUnknownError(
                f"event {target} is not in this learner's archive (yet)",
                waits_for=f"event:{target}", missing=f"event {target}")
        if target in self._index.voided:
            raise AlreadyVoidedError(f"event {target} is already voided")
        if known[0] in NOT_VOIDABLE:
            raise NotVoidableError(f"a {known[0]} fact cannot be voided")

    def absorb(self, event_id: UUID, fact: dict[str, Any]) -> None:
        payload = fact["payload"]
        fact_type = fact["type"]
        if fact_type == "learner.registered":
            self._index = _ArchiveIndex()
            self.learner_id = fact["learner_id"]
            self.name = payload["name"]
            self.org_id = payload["org_id"]
            self.rank = payload["rank"]
            self._org_since = datetime.fromisoformat(fact["occurred_at"])
        elif fact_type == "learner.transferred":
            # The latest transfer by occurred_at wins: platforms may send them out of order.
            moved_at = datetime.fromisoformat(fact["occurred_at"])
            if moved_at >= self._org_since:
                self.org_id, self._org_since = payload["org_id"], moved_at
        elif fact_type == "assignment.submitted":
            self._index.assignments[payload["assignment_id"]] = ReviewedItem(event_id)
        elif fact_type == "declaration.submitted":
            self._index.declarations[payload["declaration_id"]] = ReviewedItem(
                event_id, hours=Decimal(payload["hours"])
            )
        elif fact_type == "assignment.reviewed":
            item = self._index.assignments[payload["assignment_id"]]
            item.review_id, item.decision = event_id, payload["decision"]
        elif fact_type == "declaration.reviewed":
            item = self._index.declarations[payload["declaration_id"]]
            item.review_id, item.decision = event_id, payload["decision"]
        elif fact_type == "record.voided":
            self._absorb_void(UUID(payload["target_event_id"]))
        item_key = payload.get("assignment_id") or payload.get("declaration_id")
        self._index.facts[event_id] = (fact_type, item_key)

    def _absorb_void(self, target: UUID) -> None:
        self._index.voided.add(target)
        target_type, item_key = self._index.facts[target]
        kind, _, action = target_type.partition(".")
        items = {"assignment": self._index.assignments, "declaration": self._index.declarations}
        if kind not in items or item_key is None or item_key not in items[kind]:
            return
        item = items[kind][item_key]
        if action == "submitted" and item.submission_id == target:
            del items[kind][item_key]  # the work is withdrawn; it may be submitted anew
        elif action == "reviewed" and item.review_id == target:
            item.review_id, item.decision = None, None  # back to awaiting review

    def knows(self, event_id: UUID) -> bool:
        return event_id in self._index.facts


# The rule each fact type is checked against before it is appended (method names).
_ARCHIVE_CHECKS = {
    "learner.registered": "_check_registration",
    "assignment.submitted": "_check_assignment_submission",
    "assignment.reviewed": "_check_assignment_review",
    "declaration.submitted": "_check_declaration_submission",
    "declaration.reviewed": "_check_declaration_review",
    "record.voided": "_check_void",
}


class OrgUnit(ChainedAggregate):
    """An organisation unit (单位) in the org tree: org_id, name, parent_id, board_published."""

    @staticmethod
    def id_for(org_id: str) -> UUID:
        return org_unit_id(org_id)

    @classmethod
    def register(cls, incoming: IncomingFact, channel: str) -> OrgUnit:
        assert incoming.type == "org.registered"
        org_id = incoming.canonical["payload"]["org_id"]
        unit: OrgUnit = cls.open_with(cls.id_for(org_id), incoming, channel)
        return unit

    def record(self, incoming: IncomingFact, channel: str) -> None:
        if incoming.type == "org.registered":
            raise OrgAlreadyRegisteredError(f"org {self.org_id} is already registered")
        self.append(incoming, channel)

    def absorb(self, event_id: UUID, fact: dict[str, Any]) -> None:
        payload = fact["payload"]
        if fact["type"] == "org.registered":
            self.org_id = payload["org_id"]
            self.name = payload["name"]
            self.parent_id = payload["parent_id"]
            self.board_published = False
        elif fact["type"] == "org.board_published":
            self.board_published = bool(payload["published"])
