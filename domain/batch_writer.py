"""One attempt at writing one batch of facts: dedupe, apply, park, release, save.

Order of work (all in one transaction at the end):
1. each fact in input order: a resend answers duplicate or conflict (after the writer's
   scope is checked, so a key learns nothing of facts outside its subtree); a resent parked
   fact answers parked again; otherwise it is applied to its aggregate, refused, or parked
   when what it needs is not recorded yet;
2. release rounds: every fact (parked earlier in the store, or earlier in this batch) that
   waits for something this batch recorded is applied again, in arrival order, until no
   more are released. So the order of items inside a batch never matters;
3. one save of every changed aggregate with the new fact keys and the parking changes.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, TypeVar
from uuid import UUID

from domain.archive import ChainedAggregate, LearnerArchive, OrgUnit
from domain.errors import (
    FactConflictError,
    FactRejectedError,
    FutureFactError,
    OutOfScopeError,
    PrerequisiteMissingError,
    StudyLedgerError,
    UnknownCategoryError,
    VoidTargetElsewhereError,
    VoidTargetUnknownError,
    learner_missing,
    org_missing,
)
from domain.facts import ORG_FACT_TYPES, IncomingFact, parse_fact
from domain.parking import ParkedFact, ParkingChanges, keys_provided

if TYPE_CHECKING:
    from domain.application import StudyLedger

FUTURE_TOLERANCE = timedelta(minutes=5)


@dataclass(frozen=True)
class FactKey:
    """Where a recorded fact lives, and the digest of its content."""

    event_id: UUID
    originator_id: UUID
    originator_version: int
    digest: str


def check_not_future(incoming: IncomingFact, now: datetime) -> None:
    if incoming.envelope.occurred_at > now + FUTURE_TOLERANCE:
        raise FutureFactError(
            f"occurred_at {incoming.canonical['occurred_at']} is more than 5 minutes "
            f"in the future (server time {now.isoformat()})"
        )

A = TypeVar("A", bound=ChainedAggregate)
Status = Literal["stored", "duplicate", "conflict", "rejected", "parked"]


@dataclass(frozen=True)
class RecordResult:
    status: Status
    event_id: UUID
    position: int | None = None
    error: StudyLedgerError | None = None


@dataclass
class _Attempt:
    """A fact on its way through the batch: from the input (index) or from the store."""

    incoming: IncomingFact
    scope: str | None
    channel: str
    origin: str | None
    index: int | None = None  # position in the input; None for a fact parked earlier
    parked: ParkedFact | None = None  # its row, when it is (or was) parked
    error: PrerequisiteMissingError | None = None


class BatchWriter:
    """One attempt at writing one batch; a failed save is retried with a new writer."""

    def __init__(
        self, app: StudyLedger, facts: Sequence[IncomingFact], now: datetime, channel: str,
        within_org: str | None = None, origins: Sequence[str | None] | None = None,
        *, any_parked: bool = True,
    ) -> None:
        self.app = app
        self.facts = facts
        self.now = now
        self.channel = channel
        self.within_org = within_org
        self.origins = origins or [None] * len(facts)
        self.any_parked = any_parked  # False: the store holds no parked fact to look up
        self.touched: dict[UUID, ChainedAggregate | None] = {}
        self.results: list[RecordResult | None] = [None] * len(facts)
        self.accepted: dict[UUID, IncomingFact] = {}
        self.new_keys: list[FactKey] = []
        self.newly_provided: set[str] = set()
        self.waiting: dict[UUID, _Attempt] = {}  # blocked facts, by event id
        self.parking = ParkingChanges()
        # Input items that resend a pending fact: (index, first sight in this batch).
        self.repeats: dict[UUID, list[tuple[int, bool]]] = {}

    def write(self) -> list[RecordResult]:
        try:
            return self._write()
        except BaseException:
            self.app.forget(list(self.touched))
            raise

    def _write(self) -> list[RecordResult]:
        self._refresh_stale_cache()
        index = self.app.fact_index
        ids = [f.event_id for f in self.facts]
        known = index.find_fact_keys(ids)
        any_parked = self.any_parked
        parked_before = self.app.parking_index.find_parked(ids) if any_parked else {}
        for i, incoming in enumerate(self.facts):
            self._first_pass(i, incoming, known, parked_before)
        self._release_rounds(any_parked)
        self._park_still_waiting()
        positions = self._save()
        positions |= index.positions_of(
            [known[r.event_id] for r in self.results
             if r and r.status == "duplicate" and r.event_id in known])
        return [self._final(r, f, positions) for r, f in zip(self.results, self.facts,
                                                             strict=True)]

    def _first_pass(self, i: int, incoming: IncomingFact, known: dict[UUID, FactKey],
                    parked_before: dict[UUID, ParkedFact]) -> None:
        event_id = incoming.event_id
        earlier = known.get(event_id) or self.accepted.get(event_id)
        parked_row = parked_before.get(event_id)
        pending = self.waiting.get(event_id)
        if earlier is None and parked_row is None and pending is None:
            self._attempt(_Attempt(incoming, self.within_org, self.channel,
                                   self.origins[i], index=i))
            return
        try:
            self._check_scope(incoming, self.within_org)
        except PrerequisiteMissingError:
            pass  # only a parked fact can miss an org; it answers parked below
        except FactRejectedError as refusal:
            self.results[i] = RecordResult("rejected", event_id, error=refusal)
            return
        if earlier is not None:
            self.results[i] = _repeat_result(incoming, earlier.digest)
            return
        digest = parked_row.digest if parked_row else pending.incoming.digest  # type: ignore[union-attr]
        if digest != incoming.digest:
            self.results[i] = _repeat_result(incoming, digest)
            return
        waits = pending.error if pending else None
        if waits is None and parked_row is not None:
            waits = PrerequisiteMissingError(parked_row.reason, waits_for=parked_row.waits_for,
                                             missing=parked_row.waits_for,
                                             field=parked_row.field)
        self.results[i] = RecordResult("parked", event_id, error=waits)
        # If this batch releases it, this item answers with the outcome.
        self.repeats.setdefault(event_id, []).append((i, parked_row is not None))

    def _attempt(self, attempt: _Attempt) -> None:
        """Apply one fact; record the outcome for its input slot or its parked row."""
        incoming = attempt.incoming
        try:
            aggregate = self._apply(incoming, attempt.scope, attempt.channel)
        except PrerequisiteMissingError as error:
            if self._voids_another_archive(incoming, error):
                self._refused(attempt, VoidTargetElsewhereError(
                    f"event {incoming.canonical['payload']['target_event_id']} is recorded "
                    "in another archive; a void must name a fact of its own learner"))
                return
            attempt.error = error
            self.waiting[incoming.event_id] = attempt
            if attempt.index is not None:
                self.results[attempt.index] = RecordResult("parked", incoming.event_id,
                                                           error=error)
            return
        except FactRejectedError as error:
            self._refused(attempt, error)
            return
        self.waiting.pop(incoming.event_id, None)
        if attempt.parked is not None and attempt.parked.seq is not None:
            self.parking.release.append(incoming.event_id)
        if attempt.index is not None:
            self.results[attempt.index] = None  # stored: filled in with its position
        for i, first_sight in self.repeats.pop(incoming.event_id, []):
            self.results[i] = None if first_sight else RecordResult("duplicate",
                                                                    incoming.event_id)
        self.accepted[incoming.event_id] = incoming
        self.new_keys.append(
            FactKey(incoming.event_id, aggregate.id, aggregate.version, incoming.digest))
        self.newly_provided.update(keys_provided(incoming))

    def _voids_another_archive(self, incoming: IncomingFact,
                               error: PrerequisiteMissingError) -> bool:
        """A void whose target is already recorded, but elsewhere, will never be released."""
        if not isinstance(error, VoidTargetUnknownError):
            return False
        target = UUID(incoming.canonical["payload"]["target_event_id"])
        return target in self.accepted or bool(self.app.fact_index.find_fact_keys([target]))

    def _refused(self, attempt: _Attempt, error: FactRejectedError) -> None:
        self.waiting.pop(attempt.incoming.event_id, None)
        if attempt.index is not None:
            self.results[attempt.index] = RecordResult("rejected", attempt.incoming.event_id,
                                                       error=error)
        for i, _ in self.repeats.pop(attempt.incoming.event_id, []):
            self.results[i] = RecordResult("rejected", attempt.incoming.event_id, error=error)
        if attempt.parked is not None and attempt.parked.seq is not None:
            # Parked by an earlier batch whose sender is gone: refused now, it becomes a
            # dead letter with the reason, never a silent drop.
            self.parking.release.append(attempt.incoming.event_id)
            self.parking.dead.append(attempt.parked.because(error))

    def _release_rounds(self, any_parked: bool) -> None:
        tried_from_store: set[UUID] = set()
        while self.newly_provided:
            ready = self.newly_provided
            self.newly_provided = set()
            from_store = []
            if any_parked:
                for row in self.app.parking_index.parked_waiting_for(sorted(ready)):
                    if row.event_id in self.accepted or row.event_id in tried_from_store:
                        continue
                    tried_from_store.add(row.event_id)
                    from_store.append(self._attempt_of(row))
            from_batch = [a for a in self.waiting.values()
                          if a.error is not None and a.error.waits_for in ready]
            from_batch.sort(key=_arrival)
            for attempt in [*from_store, *from_batch]:
                self._attempt(attempt)

    def _attempt_of(self, row: ParkedFact) -> _Attempt:
        incoming = parse_fact(json.loads(row.fact_text))
        return _Attempt(incoming, row.scope, row.channel, row.origin, parked=row)

    def _park_still_waiting(self) -> None:
        for attempt in self.waiting.values():
            error = attempt.error
            assert error is not None
            if attempt.parked is not None and attempt.parked.seq is not None:
                if attempt.parked.waits_for == error.waits_for:
                    continue  # unchanged row
                self.parking.release.append(attempt.incoming.event_id)
                self.parking.park.append(attempt.parked.because(error, error.waits_for))
                continue
            incoming = attempt.incoming
            self.parking.park.append(ParkedFact(
                event_id=incoming.event_id, fact_text=incoming.canonical_text,
                digest=incoming.digest, waits_for=error.waits_for, code=error.code,
                field=error.field, reason=error.message, channel=attempt.channel,
                scope=attempt.scope, origin=attempt.origin, parked_at=self.now))

    def _save(self) -> dict[UUID, int]:
        if not self.new_keys:
            if self.parking:
                self.app.parking_index.write_parking(self.parking)
            return {}
        changed = [a for a in self.touched.values() if a is not None]
        recordings = self.app.save(*changed, fact_keys=self.new_keys, parking=self.parking)
        return {
            r.domain_event.event_id: r.notification.id  # type: ignore[attr-defined]
            for r in recordings
        }

    def _final(self, result: RecordResult | None, incoming: IncomingFact,
               positions: dict[UUID, int]) -> RecordResult:
        if result is None:
            return RecordResult("stored", incoming.event_id, positions[incoming.event_id])
        if result.status == "duplicate":
            return RecordResult("duplicate", result.event_id, positions.get(result.event_id))
        return result

    # -- the cache ---------------------------------------------------------------------

    def _refresh_stale_cache(self) -> None:
        """Evict cached aggregates another process has written to since we cached them.

        One query per batch instead of one fast-forward per aggregate. A write that lands
        after this check is still caught: the save then fails on the version and is retried.
        """
        cache = self.app.repository.cache
        if cache is None:
            return
        cached: dict[UUID, ChainedAggregate] = {}
        for aggregate_id in _streams_referenced(self.facts):
            with contextlib.suppress(KeyError):
                aggregate = cache.get(aggregate_id)
                if isinstance(aggregate, ChainedAggregate):
                    cached[aggregate_id] = aggregate
        if cached:
            versions = self.app.fact_index.current_versions(list(cached))
            self.app.forget([i for i, a in cached.items() if versions.get(i) != a.version])

    def _get(self, cls: type[A], aggregate_id: UUID) -> A | None:
        if aggregate_id not in self.touched:
            self.touched[aggregate_id] = self.app.get_existing(cls, aggregate_id)
        found = self.touched[aggregate_id]
        assert found is None or isinstance(found, cls)
        return found

    # -- rules -------------------------------------------------------------------------

    def _require_org(self, org_id: str, field: str) -> None:
        if self._get(OrgUnit, OrgUnit.id_for(org_id)) is None:
            raise org_missing(org_id, field)

    def _in_scope(self, org_id: str, scope: str, field: str) -> bool:
        """Is `org_id` the scope org or below it? Walks up the (immutable) parent links; an
        org not registered yet is a prerequisite, not a refusal."""
        current: str | None = org_id
        for _ in range(64):  # deeper than any real org tree; guards against a cycle
            if current is None:
                return False
            if current == scope:
                return True
            unit = self._get(OrgUnit, OrgUnit.id_for(current))
            if unit is None:
                raise org_missing(current, field)
            current = unit.parent_id
        return False

    def _check_scope(self, incoming: IncomingFact, scope: str | None) -> None:
        if scope is None:
            return
        payload = incoming.canonical["payload"]
        touched: list[tuple[str, str]] = []
        if incoming.type == "org.registered":
            # A key made for an org may register exactly that org (as a root or under a
            # registered parent): that is how a new district starts over HTTP.
            if payload["org_id"] != scope:
                touched.append((payload["parent_id"] or payload["org_id"],
                                "payload.parent_id" if payload["parent_id"]
                                else "payload.org_id"))
                if payload["parent_id"] is None:
                    raise _out_of_scope(payload["org_id"], scope, "payload.org_id")
        elif incoming.type in ORG_FACT_TYPES:
            touched.append((payload["org_id"], "payload.org_id"))
        else:
            archive = self._get(LearnerArchive, LearnerArchive.id_for(
                incoming.canonical["learner_id"]))
            if archive is not None:
                touched.append((archive.org_id, "learner_id"))
            if incoming.type in ("learner.registered", "learner.transferred"):
                touched.append((payload["org_id"], "payload.org_id"))
        for org_id, field in touched:
            if not self._in_scope(org_id, scope, field):
                raise _out_of_scope(org_id, scope, field)

    def _apply(self, incoming: IncomingFact, scope: str | None, channel: str
               ) -> ChainedAggregate:
        check_not_future(incoming, self.now)
        self._check_scope(incoming, scope)
        if incoming.type in ORG_FACT_TYPES:
            return self._apply_to_org(incoming, channel)
        return self._apply_to_learner(incoming, channel)

    def _apply_to_org(self, incoming: IncomingFact, channel: str) -> OrgUnit:
        payload = incoming.canonical["payload"]
        unit = self._get(OrgUnit, OrgUnit.id_for(payload["org_id"]))
        if unit is None and incoming.type == "org.registered":
            if payload["parent_id"] is not None:
                self._require_org(payload["parent_id"], "payload.parent_id")
            unit = OrgUnit.register(incoming, channel)
            self.touched[unit.id] = unit
            return unit
        if unit is None:
            raise org_missing(payload["org_id"])
        unit.record(incoming, channel)
        return unit

    def _apply_to_learner(self, incoming: IncomingFact, channel: str) -> LearnerArchive:
        learner_id = incoming.canonical["learner_id"]
        payload = incoming.canonical["payload"]
        archive = self._get(LearnerArchive, LearnerArchive.id_for(learner_id))
        if archive is None and incoming.type == "learner.registered":
            self._require_org(payload["org_id"], "payload.org_id")
            archive = LearnerArchive.register(incoming, channel)
            self.touched[archive.id] = archive
            return archive
        if archive is None:
            raise learner_missing(learner_id)
        if incoming.type == "learner.transferred":
            self._require_org(payload["org_id"], "payload.org_id")
        categories = self.app.categories
        if incoming.type == "credits.adjusted" and payload["category"] not in categories:
            raise UnknownCategoryError(
                f"category {payload['category']!r} is not counted by any policy pack "
                f"(known: {', '.join(sorted(categories))})"
            )
        archive.record(incoming, channel)
        return archive


def _arrival(attempt: _Attempt) -> tuple[int, int]:
    """Facts parked by earlier batches first, in their arrival order; then this batch's."""
    if attempt.parked is not None and attempt.parked.seq is not None:
        return (0, attempt.parked.seq)
    return (1, attempt.index or 0)


def _out_of_scope(org_id: str, scope: str, field: str) -> OutOfScopeError:
    return OutOfScopeError(
        f"org {org_id} is outside the subtree of {scope} that this key may write to",
        field=field)


def _streams_referenced(facts: Sequence[IncomingFact]) -> set[UUID]:
    """Every aggregate a batch may read: the learners and the orgs its facts name."""
    streams: set[UUID] = set()
    for incoming in facts:
        learner_id = incoming.canonical["learner_id"]
        if learner_id is not None:
            streams.add(LearnerArchive.id_for(learner_id))
        payload: dict[str, Any] = incoming.canonical["payload"]
        for key in ("org_id", "parent_id"):
            if isinstance(payload.get(key), str):
                streams.add(OrgUnit.id_for(payload[key]))
    return streams


def _repeat_result(incoming: IncomingFact, earlier_digest: str) -> RecordResult:
    if earlier_digest == incoming.digest:
        return RecordResult("duplicate", incoming.event_id)
    return RecordResult(
        "conflict",
        incoming.event_id,
        error=FactConflictError(
            f"({incoming.envelope.source}, {incoming.envelope.external_id}) was already "
            "recorded with different content; send a correction instead of a new version"
        ),
    )
