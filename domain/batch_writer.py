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

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, NamedTuple
from uuid import UUID

from domain.archive import ChainedAggregate, LearnerArchive, OrgUnit
from domain.errors import (
    FactConflictError,
    FactRejectedError,
    PrerequisiteMissingError,
    StudyLedgerError,
    VoidTargetElsewhereError,
    VoidTargetUnknownError,
)
from domain.fact_routing import FUTURE_TOLERANCE, FactRouting, check_not_future
from domain.facts import IncomingFact, parse_fact
from domain.parking import ParkedFact, ParkingChanges, keys_provided

if TYPE_CHECKING:
    from domain.application import StudyLedger

__all__ = ["BatchWriter", "FactKey", "RecordResult", "check_not_future"]

# Past this many facts written by other processes, the cache is dropped, not searched.
STALE_SCAN_LIMIT = 20_000


# The values made once per fact on the write path are named tuples: as immutable as a
# frozen dataclass, whose __init__ (object.__setattr__ per field) cost ~1 us a value.
class FactKey(NamedTuple):
    """Where a recorded fact lives, and the digest of its content."""

    event_id: UUID
    originator_id: UUID
    originator_version: int
    digest: str


Status = Literal["stored", "duplicate", "conflict", "rejected", "parked"]


class RecordResult(NamedTuple):
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


class BatchWriter(FactRouting):
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
        self.unrecorded: set[UUID] = set()  # streams named by the batch, not in the store
        self.future_limit = now + FUTURE_TOLERANCE
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
        self.unrecorded = self._streams_not_recorded()
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
        positions = self.app.record_changes(changed, fact_keys=self.new_keys,
                                            parking=self.parking)
        if positions and self.app.cache_clean_through is not None:
            # Under the writer lock nothing else was written since the check: the cache
            # (holding this batch's aggregates as saved) agrees with the log through here.
            self.app.cache_clean_through = max(positions.values())
        return positions

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

        The application knows a position through which its cache agrees with the store (it
        wrote last, under the writer lock): when the log still ends there, nothing is
        stale and nothing is read. Otherwise the streams written after it are evicted (or
        the whole cache after a long gap). A write that lands after this check is still
        caught: the save then fails on the version and is retried.
        """
        app = self.app
        if app.repository.cache is None:
            return
        latest = app.recorder.max_notification_id() or 0
        clean = app.cache_clean_through
        if clean == latest:
            return
        if clean is not None and 0 < latest - clean <= STALE_SCAN_LIMIT:
            app.forget(app.fact_index.streams_written_after(clean))
        else:
            app.forget_all()
        app.cache_clean_through = latest

    def _streams_not_recorded(self) -> set[UUID]:
        """The streams this batch names that the store does not hold yet (new learners and
        orgs), found with one query, so that each is not looked for on its own. The
        recorded ones not cached are read into the cache by the same query when they fit."""
        streams = _streams_referenced(self.facts)
        cache = self.app.repository.cache
        if cache is not None:
            cached = cache.cache
            streams = {stream for stream in streams if stream not in cached}
        if not streams:
            return set()
        if self.app.cached_loads_fit(len(streams)):
            return streams - self.app.load_streams(list(streams))
        return streams - self.app.fact_index.current_versions(list(streams)).keys()


def _arrival(attempt: _Attempt) -> tuple[int, int]:
    """Facts parked by earlier batches first, in their arrival order; then this batch's."""
    if attempt.parked is not None and attempt.parked.seq is not None:
        return (0, attempt.parked.seq)
    return (1, attempt.index or 0)


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
