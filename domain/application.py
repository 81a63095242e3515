"""The StudyLedger application: record facts in batches, read archives, verify chains.

Writes go in batches: facts are applied to their aggregates in input order and the whole
batch is saved in one transaction, together with its fact keys (the idempotency index).
The persistence module is chosen by the environment the composition root passes in.
"""

from __future__ import annotations

import contextlib
import functools
import json
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar, cast
from uuid import UUID

from eventsourcing.application import (
    AggregateNotFoundError,
    Application,
    LRUCache,
    ProcessingEvent,
)
from eventsourcing.persistence import IntegrityError, Recording, StoredEvent, Transcoder
from eventsourcing.utils import get_topic

from domain.aggregate_cache import FactBoundedCache
from domain.archive import ChainedAggregate, LearnerArchive, OrgUnit
from domain.batch_writer import BatchWriter, FactKey, RecordResult
from domain.chain import BrokenLink, ChainLink, ChainVerifier
from domain.credits.balance import BalanceAnswer, compute_balance, parse_period
from domain.credits.lines import RecordedFact
from domain.errors import LearnerNotRegisteredError
from domain.facts import IncomingFact, parse_fact
from domain.gc_pauses import fewer_gc_pauses

__all__ = ["FactKey", "LoggedFact", "RecordResult", "StudyLedger"]
from domain.parking import DeadLetterRecord, ParkedFact, ParkingIndex
from domain.policy.pack import all_categories, load_pack
from domain.transcoding import OrjsonTranscoder

MAX_SAVE_ATTEMPTS = 5
DEFAULT_PARK_TIMEOUT = timedelta(days=1)
# The environment's bound on the events the cached aggregates hold between them (beside the
# library's AGGREGATE_CACHE_MAXSIZE, a bound by count).
AGGREGATE_CACHE_MAX_FACTS = "AGGREGATE_CACHE_MAX_FACTS"
A = TypeVar("A", bound=ChainedAggregate)


LogRow = tuple[int, UUID, int, bytes]
# (position, stream id, version, topic, stored state)
TopicLogRow = tuple[int, UUID, int, str, bytes]


class FactIndex(Protocol):
    """Set-at-a-time lookups the batched write path needs; implemented by the recorder,
    which stores the fact keys in the same transaction as the events."""

    def find_fact_keys(self, event_ids: Sequence[UUID]) -> dict[UUID, FactKey]: ...

    def positions_of(self, keys: Sequence[FactKey]) -> dict[UUID, int]: ...

    def current_versions(self, stream_ids: Sequence[UUID]) -> dict[UUID, int]: ...

    def stream_events(self, stream_ids: Sequence[UUID]) -> list[StoredEvent]:
        """Every stored event of these streams, by stream and version."""

    def streams_written_after(self, position: int) -> list[UUID]:
        """The streams of every event recorded after `position` in the log."""

    def log_rows(self, after: int, limit: int) -> list[LogRow]:
        """(position, stream id, version, stored state) of the next events after `after`."""

    def stream_rows(self, through: int, after: tuple[UUID, int], limit: int
                    ) -> list[TopicLogRow]:
        """The events at log positions up to `through`, ordered by stream and version,
        the next `limit` after the (stream id, version) `after`."""

    def topic_rows(self, topics: Sequence[str], through: int) -> list[TopicLogRow]:
        """Every event of these topics at log positions up to `through`, in log order."""

    def exclusive_writer(self) -> AbstractContextManager[None]:
        """Held for a whole batch: one batch writer at a time across processes."""


@dataclass
class RedriveReport:
    counts: dict[str, int] = field(default_factory=dict)
    failures: list[tuple[DeadLetterRecord, RecordResult]] = field(default_factory=list)

    def count(self, result: RecordResult) -> None:
        self.counts[result.status] = self.counts.get(result.status, 0) + 1


@dataclass(frozen=True)
class LoggedFact:
    """One recorded fact where it sits in the notification log: what the projection
    runner, the relay and export read."""

    position: int
    stream_id: UUID
    version: int
    event_id: UUID
    fact: dict[str, Any]
    timestamp: datetime  # when recorded, as the library's events name it
    hash: str
    prev_hash: str

    @property
    def recorded(self) -> RecordedFact:
        return RecordedFact(self.event_id, self.fact, self.timestamp)

    @classmethod
    def of_event(cls, position: int, stream_id: UUID, version: int,
                 event: dict[str, Any]) -> LoggedFact:
        """From a fact event's decoded state."""
        return cls(position, stream_id, version, event["event_id"], event["fact"],
                   event["timestamp"], event["hash"], event["prev_hash"])


@dataclass(frozen=True)
class ChainReport:
    stream_id: UUID
    label: str
    links_checked: int
    broken: BrokenLink | None


class StudyLedger(Application[UUID]):
    name = "StudyLedger"

    def __init__(self, env: dict[str, str] | None = None,
                 park_timeout: timedelta = DEFAULT_PARK_TIMEOUT) -> None:
        super().__init__(env)
        max_facts = self.env.get(AGGREGATE_CACHE_MAX_FACTS)
        cache = self.repository.cache
        if max_facts and isinstance(cache, LRUCache):
            self.repository.cache = FactBoundedCache(cache.maxsize, int(max_facts))
        # One batch at a time per process: the cached aggregates are mutated in place.
        self._write_lock = threading.Lock()
        self.categories = all_categories()
        self.park_timeout = park_timeout
        # The log position through which every cached aggregate agrees with the store.
        # None: not known; the next batch drops the cache and takes the log's end.
        self.cache_clean_through: int | None = None

    def construct_transcoder(self) -> Transcoder:
        """The library's JSON format, written and read with orjson (unless the environment
        names another transcoder)."""
        if self.env.get(self.factory.TRANSCODER_TOPIC):
            return super().construct_transcoder()
        transcoder = OrjsonTranscoder()
        self.register_transcodings(transcoder)
        return transcoder

    def save(self, *objs: Any, **kwargs: Any) -> list[Recording[UUID]]:
        """The library's save, without its runtime Protocol checks (isinstance against a
        typing.Protocol inspects every attribute: a few percent of a profiled ingest) when
        every object is one of this application's aggregates."""
        if not all(isinstance(obj, ChainedAggregate) for obj in objs):
            return super().save(*objs, **kwargs)
        processing_event: ProcessingEvent[UUID] = ProcessingEvent()
        for obj in objs:
            processing_event.events.extend(obj.collect_events())
            processing_event.aggregates[obj.id] = obj
        processing_event.saved_kwargs.update(kwargs)
        recordings = self._record(processing_event)
        self._take_snapshots(processing_event)
        self._notify(recordings)
        self.notify(processing_event.events)
        return recordings

    def record_changes(self, aggregates: Sequence[ChainedAggregate], **kwargs: Any
                       ) -> dict[UUID, int]:
        """Save the aggregates' new facts in one transaction (kwargs go to the recorder);
        the log position of each, by event id.

        A fact appended to an aggregate is stored from its plain values: the row's state is
        the bytes the library's mapper would write for its FactRecorded event (the same
        keys, order and tags), without the event object, the mapper or the Recording. Any
        other event (an Opened), and every event when the store enciphers, compresses,
        snapshots or names another transcoder, goes the library's way."""
        transcoder = self.mapper.transcoder
        if (self.snapshots is not None or not self._plain_state
                or not isinstance(transcoder, OrjsonTranscoder)):
            recordings = self.save(*aggregates, **kwargs)
            return {r.domain_event.event_id: r.notification.id  # type: ignore[attr-defined]
                    for r in recordings}
        rows: list[StoredEvent] = []
        event_ids: list[UUID] = []
        for aggregate in aggregates:
            for event in aggregate.collect_library_events():
                rows.append(self.mapper.to_stored_event(event))
                event_ids.append(event.event_id)  # type: ignore[attr-defined]
            topic = _fact_recorded_topic(type(aggregate))
            for pending in aggregate.collect_pending_facts():
                state = pending.event_state()
                state["class_version"] = aggregate.FactRecorded.class_version
                rows.append(StoredEvent(aggregate.id, pending.version, topic,
                                        transcoder.encode_trusted(state)))
                event_ids.append(pending.event_id)
        notification_ids = self.recorder.insert_events(rows, **kwargs) or []
        cache = self.repository.cache
        if cache and not self.repository.fastforward:
            for aggregate in aggregates:
                cache.put(aggregate.id, aggregate)
        return dict(zip(event_ids, notification_ids, strict=True))

    @property
    def fact_index(self) -> FactIndex:
        index: Any = self.recorder
        return index  # type: ignore[no-any-return]

    @property
    def parking_index(self) -> ParkingIndex:
        index: Any = self.recorder
        return index  # type: ignore[no-any-return]

    # -- writing ---------------------------------------------------------------------

    def record_facts(
        self, facts: Sequence[IncomingFact], *, now: datetime, channel: str,
        within_org: str | None = None, origins: Sequence[str | None] | None = None,
    ) -> list[RecordResult]:
        """Record a batch atomically; one result per fact, in order. Nothing is dropped:
        a fact whose prerequisite is missing is parked and recorded when it arrives.

        With `within_org`, a fact is rejected (out_of_scope) unless every org it touches is
        in that org's subtree, judged on the state the fact itself applies to. `origins`
        (JSON, one per fact) says where each fact was read, for its dead letter if any.
        """
        # The thread lock first, so a process holds at most one cross-process writer lock.
        with fewer_gc_pauses(), self._write_lock, self.fact_index.exclusive_writer():
            # One look at the parking table per batch: the common case has nothing parked,
            # and then neither expiry nor the parked-fact lookups run. The writer lock keeps
            # the answer true for the whole batch.
            any_parked = self.parking_index.parked_count() > 0
            if any_parked:
                self.parking_index.expire_parked(now - self.park_timeout, now)
            for attempt in range(MAX_SAVE_ATTEMPTS):
                try:
                    return BatchWriter(self, facts, now, channel, within_org, origins,
                                       any_parked=any_parked).write()
                except IntegrityError:
                    # Another writer got there first (same aggregate version or same fact
                    # key). Everything is re-read on the next attempt.
                    if attempt == MAX_SAVE_ATTEMPTS - 1:
                        raise
            raise AssertionError("unreachable")

    # -- parked facts and dead letters -------------------------------------------------

    def expire_parked(self, now: datetime) -> list[ParkedFact]:
        """Dead-letter the facts that waited longer than the park timeout."""
        with self._write_lock, self.fact_index.exclusive_writer():
            return self._expire_parked(now)

    def _expire_parked(self, now: datetime) -> list[ParkedFact]:
        if self.parking_index.parked_count() == 0:
            return []
        return self.parking_index.expire_parked(now - self.park_timeout, now)

    def unpublished_dead_letters(self, channel: str) -> list[DeadLetterRecord]:
        """Dead letters of a channel that its dead-letter topic has not acknowledged yet."""
        return self.parking_index.list_dead_letters(unpublished_channel=channel)

    def mark_dead_letters_published(self, ids: Sequence[int]) -> None:
        if ids:
            self.parking_index.mark_dead_letters(ids, published=True)

    def parked(self, limit: int = 1000) -> list[ParkedFact]:
        return self.parking_index.list_parked(limit)

    def parked_count(self) -> int:
        return self.parking_index.parked_count()

    def redrive(self, now: datetime) -> RedriveReport:
        """Submit every unresolved dead letter again, with its original channel and scope.
        Stored, duplicate or parked again resolve it; a refusal leaves it with the reason."""
        report = RedriveReport()
        letters = self.parking_index.list_dead_letters(unresolved=True, limit=100_000)
        groups: dict[tuple[str, str | None], list[DeadLetterRecord]] = {}
        for letter in letters:
            groups.setdefault((letter.fact.channel, letter.fact.scope), []).append(letter)
        for (channel, scope), group in groups.items():
            for start in range(0, len(group), 1000):
                chunk = group[start:start + 1000]
                facts = [parse_fact(json.loads(d.fact.fact_text)) for d in chunk]
                results = self.record_facts(facts, now=now, channel=channel, within_org=scope,
                                            origins=[d.fact.origin for d in chunk])
                resolved = []
                for letter, result in zip(chunk, results, strict=True):
                    report.count(result)
                    if result.status in ("stored", "duplicate", "parked"):
                        resolved.append(letter.id)
                    else:
                        report.failures.append((letter, result))
                self.parking_index.mark_dead_letters(resolved, resolved=True)
        return report

    def cached_loads_fit(self, count: int) -> bool:
        """Whether `count` aggregates read at once into the cache would all stay in it."""
        cache = self.repository.cache
        return (cache is not None and self.snapshots is None
                and count <= getattr(cache, "maxsize", count))

    def load_streams(self, stream_ids: Sequence[UUID]) -> set[UUID]:
        """Read the recorded aggregates among these streams into the cache; the ids found.

        One query for a batch's uncached aggregates: a writer that starts cold (a restarted
        API worker, a consumer, a large district whose archives left the cache) otherwise
        reads each on its own, a round trip per learner plus the library's check of every
        event against a runtime Protocol (a third of that load). Events still go through the
        mapper, so a cipher, a compressor and upcasting apply as on the library's path."""
        cache = self.repository.cache
        assert cache is not None, "load_streams fills the aggregate cache"
        to_domain_event = self.mapper.to_domain_event
        events_of: dict[UUID, list[Any]] = {}
        for stored in self.fact_index.stream_events(stream_ids):
            # Both recorders give stream ids as UUIDs.
            events_of.setdefault(cast(UUID, stored.originator_id), []).append(stored)
        for stream_id, stored_events in events_of.items():
            cache.put(stream_id, _mutate_in_turn(None, map(to_domain_event, stored_events)))
        return set(events_of)

    def get_existing(self, cls: type[A], aggregate_id: UUID) -> A | None:
        try:
            aggregate: ChainedAggregate = self.repository.get(
                aggregate_id, projector_func=_mutate_in_turn)
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

    def forget_all(self) -> None:
        """Drop every cached aggregate."""
        cache = self.repository.cache
        if cache is not None:
            self.forget(list(cache.cache))

    # -- reading ---------------------------------------------------------------------

    def read_log(self, after: int, limit: int) -> list[LoggedFact]:
        """The next recorded facts after log position `after`, at most `limit`, in order."""
        if self._plain_state:
            # The events' stored state read straight through the transcoder: the fields read
            # here are in every version of the fact events (upcasting only adds a channel).
            decode = self.mapper.transcoder.decode
            return [LoggedFact.of_event(position, stream_id, version, decode(state))
                    for position, stream_id, version, state
                    in self.fact_index.log_rows(after, limit)]
        return [LoggedFact.of_event(n.id, UUID(str(n.originator_id)), n.originator_version,
                                    _fact_fields(self.mapper.to_domain_event(n)))
                for n in self.recorder.select_notifications(start=after + 1, limit=limit)]

    def read_streams(self, through: int, after: tuple[UUID, int] | None, limit: int
                     ) -> list[LoggedFact]:
        """The facts recorded up to log position `through`, stream by stream (each in the
        order recorded), the next `limit` after the (stream id, version) `after`: a rebuild
        reads every stream once, whole, instead of again each time the log returns to it."""
        start = after if after is not None else (UUID(int=0), 0)
        return self._logged(self.fact_index.stream_rows(through, start, limit))

    def read_org_log(self, through: int) -> list[LoggedFact]:
        """Every org fact recorded up to log position `through`, in log order."""
        topics = [get_topic(OrgUnit.Opened), get_topic(OrgUnit.FactRecorded)]
        return self._logged(self.fact_index.topic_rows(topics, through))

    def _logged(self, rows: list[TopicLogRow]) -> list[LoggedFact]:
        decode = self.mapper.transcoder.decode
        return [LoggedFact.of_event(position, stream_id, version, decode(state)
                                    if self._plain_state else _fact_fields(
                                        self.mapper.to_domain_event(
                                            StoredEvent(stream_id, version, topic, state))))
                for position, stream_id, version, topic, state in rows]

    @property
    def _plain_state(self) -> bool:
        """Stored state the transcoder reads as it is: no cipher, no compression."""
        return self.mapper.cipher is None and self.mapper.compressor is None

    def last_position(self) -> int:
        """The log position of the last recorded fact (0: nothing recorded)."""
        return self.recorder.max_notification_id() or 0

    def stream_facts(self, stream_id: UUID, through_version: int | None = None
                     ) -> list[RecordedFact]:
        """A stream's facts in the order recorded, up to a version when given."""
        events: list[Any] = list(self.events.get(stream_id, lte=through_version))
        return [RecordedFact(e.event_id, e.fact, e.timestamp) for e in events]

    def facts_of(self, learner_id: str) -> list[RecordedFact]:
        """Every fact in a learner's archive, in the order recorded."""
        facts = self.stream_facts(LearnerArchive.id_for(learner_id))
        if not facts:
            raise LearnerNotRegisteredError(f"learner {learner_id} is not registered")
        return facts

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
        self, page_size: int = 2000, on_page: Callable[[int], object] | None = None
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


def _mutate_in_turn(aggregate: Any, events: Iterable[Any]) -> Any:
    """The library's project_aggregate without its assert of each event against a runtime
    Protocol (isinstance inspects every attribute of the Protocol: a third of a load)."""
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


@functools.cache
def _fact_recorded_topic(cls: type[ChainedAggregate]) -> str:
    return get_topic(cls.FactRecorded)


def _label_of(fact: dict[str, Any]) -> str:
    if fact.get("learner_id"):
        return f"learner {fact['learner_id']}"
    return f"org {fact.get('payload', {}).get('org_id')}"


def _fact_fields(event: Any) -> dict[str, Any]:
    """A fact event's fields, as LoggedFact.of_event reads them from a decoded state."""
    return {name: getattr(event, name)
            for name in ("event_id", "fact", "timestamp", "hash", "prev_hash")}
