"""The StudyLedger application: record facts in batches, read archives, verify chains.

Writes go in batches: facts are applied to their aggregates in input order and the whole
batch is saved in one transaction, together with its fact keys (the idempotency index).
The persistence module is chosen by the environment the composition root passes in.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError, StoredEvent

from domain.archive import ChainedAggregate, LearnerArchive, OrgUnit
from domain.chain import BrokenLink, ChainLink, ChainVerifier
from domain.credits.balance import BalanceAnswer, compute_balance, parse_period
from domain.credits.lines import RecordedFact
from domain.errors import (
    FactConflictError,
    FactRejectedError,
    FutureFactError,
    LearnerNotRegisteredError,
    OrgNotRegisteredError,
    OutOfScopeError,
    StudyLedgerError,
    UnknownCategoryError,
)
from domain.facts import ORG_FACT_TYPES, IncomingFact
from domain.policy.pack import all_categories, load_pack

FUTURE_TOLERANCE = timedelta(minutes=5)
MAX_SAVE_ATTEMPTS = 5
A = TypeVar("A", bound=ChainedAggregate)


@dataclass(frozen=True)
class FactKey:
    """Where a recorded fact lives, and the digest of its content."""

    event_id: UUID
    originator_id: UUID
    originator_version: int
    digest: str


class FactIndex(Protocol):
    """Set-at-a-time lookups the batched write path needs; implemented by the recorder,
    which stores the fact keys in the same transaction as the events."""

    def find_fact_keys(self, event_ids: Sequence[UUID]) -> dict[UUID, FactKey]: ...

    def positions_of(self, keys: Sequence[FactKey]) -> dict[UUID, int]: ...

    def current_versions(self, stream_ids: Sequence[UUID]) -> dict[UUID, int]: ...

    def exclusive_writer(self) -> AbstractContextManager[None]:
        """Held for a whole batch: one batch writer at a time across processes."""


@dataclass(frozen=True)
class RecordResult:
    status: Literal["stored", "duplicate", "conflict", "rejected"]
    event_id: UUID
    position: int | None = None
    error: StudyLedgerError | None = None


@dataclass(frozen=True)
class ChainReport:
    stream_id: UUID
    label: str
    links_checked: int
    broken: BrokenLink | None


def check_not_future(incoming: IncomingFact, now: datetime) -> None:
    if incoming.envelope.occurred_at > now + FUTURE_TOLERANCE:
        raise FutureFactError(
            f"occurred_at {incoming.canonical['occurred_at']} is more than 5 minutes "
            f"in the future (server time {now.isoformat()})"
        )


class StudyLedger(Application[UUID]):
    name = "StudyLedger"

    def __init__(self, env: dict[str, str] | None = None) -> None:
        super().__init__(env)
        # One batch at a time per process: the cached aggregates are mutated in place.
        self._write_lock = threading.Lock()
        self._categories = all_categories()

    @property
    def fact_index(self) -> FactIndex:
        index: Any = self.recorder
        return index  # type: ignore[no-any-return]

    # -- writing ---------------------------------------------------------------------

    def record_facts(
        self, facts: Sequence[IncomingFact], *, now: datetime, channel: str,
        within_org: str | None = None,
    ) -> list[RecordResult]:
        """Record a batch atomically; one result per fact, in order. Nothing is dropped.

        With `within_org`, a fact is rejected (out_of_scope) unless every org it touches is
        in that org's subtree, judged on the state the fact itself applies to.
        """
        # The thread lock first, so a process holds at most one cross-process writer lock.
        with self._write_lock, self.fact_index.exclusive_writer():
            for attempt in range(MAX_SAVE_ATTEMPTS):
                try:
                    return _BatchWriter(self, facts, now, channel, within_org).write()
                except IntegrityError:
                    # Another writer got there first (same aggregate version or same fact
                    # key). Everything is re-read on the next attempt.
                    if attempt == MAX_SAVE_ATTEMPTS - 1:
                        raise
            raise AssertionError("unreachable")

    def get_existing(self, cls: type[A], aggregate_id: UUID) -> A | None:
        try:
            aggregate: ChainedAggregate = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None
        if not isinstance(aggregate, cls):
            raise TypeError(f"aggregate {aggregate_id} is a {type(aggregate).__name__}")
        return aggregate

    def forget(self, aggregate_ids: Sequence[UUID]) -> None:
        """Drop aggregates from the cache (after a failed save they may hold unsaved events)."""
        cache = self.repository.cache
        if cache is not None:
            for aggregate_id in aggregate_ids:
                with contextlib.suppress(KeyError):
                    cache.get(aggregate_id, evict=True)

    # -- reading ---------------------------------------------------------------------

    def facts_of(self, learner_id: str) -> list[RecordedFact]:
        """Every fact in a learner's archive, in the order recorded."""
        events = list(self.events.get(LearnerArchive.id_for(learner_id)))
        if not events:
            raise LearnerNotRegisteredError(f"learner {learner_id} is not registered")
        return [RecordedFact(e.event_id, e.fact, e.timestamp) for e in events]  # type: ignore[attr-defined]

    def balance(
        self, learner_id: str, policy: str, period: str, as_of: datetime | None = None
    ) -> BalanceAnswer:
        pack = load_pack(policy)
        facts = self.facts_of(learner_id)
        if as_of is not None and (facts[0].recorded_at or as_of) > as_of:
            raise LearnerNotRegisteredError(
                f"learner {learner_id} had no record yet as of {as_of.isoformat()} "
                f"(registered in the archive at {facts[0].recorded_at})")
        return compute_balance(pack, facts, parse_period(pack, period), as_of)

    # -- verifying -------------------------------------------------------------------

    def verify_stream(self, stream_id: UUID) -> ChainReport:
        verifier = ChainVerifier()
        label = str(stream_id)
        for stored in self.recorder.select_events(stream_id):
            link = self._link_of(stored)
            if isinstance(link, BrokenLink):
                verifier.broken = link
                break
            label = label if verifier.links_checked else _label_of(link.fact)
            if verifier.check(link) is not None:
                break
        return ChainReport(stream_id, label, verifier.links_checked, verifier.broken)

    def verify_learner(self, learner_id: str) -> ChainReport:
        report = self.verify_stream(LearnerArchive.id_for(learner_id))
        if report.links_checked == 0 and report.broken is None:
            raise LearnerNotRegisteredError(f"learner {learner_id} is not registered")
        return report

    def verify_all(
        self, page_size: int = 2000, on_page: Callable[[int], None] | None = None
    ) -> Iterator[ChainReport]:
        """One pass over the notification log, checking every stream's chain."""
        verifiers: dict[UUID, ChainVerifier] = {}
        labels: dict[UUID, str] = {}
        start = 1
        while True:
            page = self.recorder.select_notifications(start=start, limit=page_size)
            if not page:
                break
            for notification in page:
                stream_id = UUID(str(notification.originator_id))
                verifier = verifiers.setdefault(stream_id, ChainVerifier())
                if verifier.broken is not None:
                    continue
                link = self._link_of(notification)
                if isinstance(link, BrokenLink):
                    verifier.broken = link
                    continue
                labels.setdefault(stream_id, _label_of(link.fact))
                verifier.check(link)
            start = page[-1].id + 1
            if on_page is not None:
                on_page(len(page))
        for stream_id, verifier in verifiers.items():
            label = labels.get(stream_id, str(stream_id))
            yield ChainReport(stream_id, label, verifier.links_checked, verifier.broken)

    def _link_of(self, stored: StoredEvent) -> ChainLink | BrokenLink:
        try:
            event: Any = self.mapper.to_domain_event(stored)
            return ChainLink(
                stored.originator_version, UUID(str(event.event_id)), event.fact,
                event.prev_hash, event.hash,
            )
        except Exception as exc:  # noqa: BLE001 - a tampered row may fail in any way
            return BrokenLink(
                stored.originator_version, None, f"stored row cannot be decoded: {exc}"
            )


def _label_of(fact: dict[str, Any]) -> str:
    if fact.get("learner_id"):
        return f"learner {fact['learner_id']}"
    return f"org {fact.get('payload', {}).get('org_id')}"


class _BatchWriter:
    """One attempt at writing one batch."""

    def __init__(
        self, app: StudyLedger, facts: Sequence[IncomingFact], now: datetime, channel: str,
        within_org: str | None = None,
    ) -> None:
        self.app = app
        self.facts = facts
        self.now = now
        self.channel = channel
        self.within_org = within_org
        self.touched: dict[UUID, ChainedAggregate | None] = {}

    def write(self) -> list[RecordResult]:
        try:
            return self._write()
        except BaseException:
            self.app.forget(list(self.touched))
            raise

    def _write(self) -> list[RecordResult]:
        self._refresh_stale_cache()
        known = self.app.fact_index.find_fact_keys([f.event_id for f in self.facts])
        results: list[RecordResult | None] = [None] * len(self.facts)
        accepted: dict[UUID, IncomingFact] = {}
        new_keys: list[FactKey] = []
        for i, incoming in enumerate(self.facts):
            earlier = known.get(incoming.event_id) or accepted.get(incoming.event_id)
            if earlier is not None:
                results[i] = _repeat_result(incoming, earlier.digest)
                continue
            try:
                aggregate = self._apply(incoming)
            except FactRejectedError as error:
                results[i] = RecordResult("rejected", incoming.event_id, error=error)
                continue
            accepted[incoming.event_id] = incoming
            new_keys.append(
                FactKey(incoming.event_id, aggregate.id, aggregate.version, incoming.digest)
            )
        positions = self._save(new_keys)
        positions |= self.app.fact_index.positions_of(
            [known[r.event_id] for r in results if r and r.status == "duplicate"
             and r.event_id in known]
        )
        return [
            RecordResult(
                r.status, r.event_id,
                positions.get(r.event_id) if r.status == "duplicate" else None, r.error,
            )
            if r is not None
            else RecordResult("stored", f.event_id, positions[f.event_id])
            for r, f in zip(results, self.facts, strict=True)
        ]

    def _save(self, new_keys: list[FactKey]) -> dict[UUID, int]:
        if not new_keys:
            return {}
        changed = [a for a in self.touched.values() if a is not None]
        recordings = self.app.save(*changed, fact_keys=new_keys)
        return {
            r.domain_event.event_id: r.notification.id  # type: ignore[attr-defined]
            for r in recordings
        }

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

    def _require_org(self, org_id: str, field: str) -> None:
        if self._get(OrgUnit, OrgUnit.id_for(org_id)) is None:
            raise OrgNotRegisteredError(f"org {org_id} is not registered", field=field)

    def _in_scope(self, org_id: str) -> bool:
        """Is `org_id` the scope org or below it? Walks up the (immutable) parent links."""
        current: str | None = org_id
        for _ in range(64):  # deeper than any real org tree; guards against a cycle
            if current is None:
                return False
            if current == self.within_org:
                return True
            unit = self._get(OrgUnit, OrgUnit.id_for(current))
            current = None if unit is None else unit.parent_id
        return False

    def _check_scope(self, incoming: IncomingFact) -> None:
        payload = incoming.canonical["payload"]
        touched: list[tuple[str, str]] = []
        if incoming.type == "org.registered":
            touched.append((payload["parent_id"] or payload["org_id"], "payload.parent_id"))
        elif incoming.type in ORG_FACT_TYPES:
            touched.append((payload["org_id"], "payload.org_id"))
        else:
            archive = self._get(LearnerArchive, LearnerArchive.id_for(incoming.canonical[
                "learner_id"]))
            if archive is not None:
                touched.append((archive.org_id, "learner_id"))
            if incoming.type in ("learner.registered", "learner.transferred"):
                touched.append((payload["org_id"], "payload.org_id"))
        for org_id, field in touched:
            if not self._in_scope(org_id):
                raise OutOfScopeError(
                    f"org {org_id} is outside the subtree of {self.within_org} that this "
                    "key may write to", field=field)

    def _apply(self, incoming: IncomingFact) -> ChainedAggregate:
        check_not_future(incoming, self.now)
        if self.within_org is not None:
            self._check_scope(incoming)
        if incoming.type in ORG_FACT_TYPES:
            return self._apply_to_org(incoming)
        return self._apply_to_learner(incoming)

    def _apply_to_org(self, incoming: IncomingFact) -> OrgUnit:
        payload = incoming.canonical["payload"]
        unit = self._get(OrgUnit, OrgUnit.id_for(payload["org_id"]))
        if unit is None and incoming.type == "org.registered":
            if payload["parent_id"] is not None:
                self._require_org(payload["parent_id"], "payload.parent_id")
            unit = OrgUnit.register(incoming, self.channel)
            self.touched[unit.id] = unit
            return unit
        if unit is None:
            raise OrgNotRegisteredError(f"org {payload['org_id']} is not registered")
        unit.record(incoming, self.channel)
        return unit

    def _apply_to_learner(self, incoming: IncomingFact) -> LearnerArchive:
        learner_id = incoming.canonical["learner_id"]
        payload = incoming.canonical["payload"]
        archive = self._get(LearnerArchive, LearnerArchive.id_for(learner_id))
        if archive is None and incoming.type == "learner.registered":
            self._require_org(payload["org_id"], "payload.org_id")
            archive = LearnerArchive.register(incoming, self.channel)
            self.touched[archive.id] = archive
            return archive
        if archive is None:
            raise LearnerNotRegisteredError(f"learner {learner_id} is not registered")
        if incoming.type == "learner.transferred":
            self._require_org(payload["org_id"], "payload.org_id")
        if incoming.type == "credits.adjusted" and payload["category"] not in self.app._categories:
            raise UnknownCategoryError(
                f"category {payload['category']!r} is not counted by any policy pack "
                f"(known: {', '.join(sorted(self.app._categories))})"
            )
        archive.record(incoming, self.channel)
        return archive


def _streams_referenced(facts: Sequence[IncomingFact]) -> set[UUID]:
    """Every aggregate a batch may read: the learners and the orgs its facts name."""
    streams: set[UUID] = set()
    for incoming in facts:
        learner_id = incoming.canonical["learner_id"]
        if learner_id is not None:
            streams.add(LearnerArchive.id_for(learner_id))
        payload = incoming.canonical["payload"]
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
