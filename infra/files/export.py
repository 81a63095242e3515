"""Recorded facts as JSONL that `studyledger ingest` takes back (`studyledger export`).

Each line is what the relay publishes (consumers.relay.recorded_record): the canonical fact as
stored, with its event id, log position, recorded time and chain link. Lines keep log order,
so every fact comes after what it needs (its org and the org's parents, its learner, the
submission it reviews, the fact it voids): one pass of `ingest` records every stream in its
original order, hence with the same event ids and, on a store holding nothing else of those
streams, the same hash chain.

A selection (learners, or an org subtree) brings the org facts its facts need with it, so it
can be ingested into an empty store. Only recorded facts are exported: parked facts and dead
letters are not in the log.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any
from uuid import UUID

from tqdm import tqdm

from consumers.relay import recorded_record
from domain.application import FactKey, StudyLedger
from domain.archive import LearnerArchive, OrgUnit
from domain.credits.lines import RecordedFact
from domain.errors import LearnerNotRegisteredError, OrgNotRegisteredError
from projections.learner_views import current_org_id

PAGE = 2000
MAX_DEPTH = 64  # deeper than any real org tree; guards against a cycle
PLACEMENT_TYPES = ("learner.registered", "learner.transferred")
# tqdm's bar.update fits (it takes a float and answers a bool, ignored here).
Progress = Callable[[int], object]


@dataclass(frozen=True)
class ExportScope:
    """What to export: every fact, some learners', or an org subtree's; from a position on."""

    learners: tuple[str, ...] = ()
    org: str | None = None
    from_position: int = 1


@dataclass
class ExportReport:
    learner_facts: int = 0
    org_facts: int = 0
    learners: set[str] = field(default_factory=set)
    orgs: set[str] = field(default_factory=set)
    first_position: int | None = None
    last_position: int | None = None
    log_end: int = 0  # the last position recorded when the export began

    @property
    def facts(self) -> int:
        return self.learner_facts + self.org_facts

    def count(self, position: int, fact: dict[str, Any]) -> None:
        if fact["learner_id"] is None:
            self.org_facts += 1
            self.orgs.add(fact["payload"]["org_id"])
        else:
            self.learner_facts += 1
            self.learners.add(fact["learner_id"])
        if self.first_position is None:
            self.first_position = position
        self.last_position = position


def export_facts(ledger: StudyLedger, out: IO[str], scope: ExportScope, *,
                 show_progress: bool | None = None) -> ExportReport:
    """Write the scope's facts to `out`, one JSON line each, in log order. The export is the
    log as it stood when it began: facts recorded meanwhile are left to the next one."""
    report = ExportReport(log_end=ledger.recorder.max_notification_id() or 0)
    disable = None if show_progress is None else not show_progress  # None: off unless a TTY
    start, stop = scope.from_position, report.log_end
    if scope.learners:
        records = _streams_in_log_order(ledger, _learner_streams(ledger, scope.learners),
                                        start, stop)
        with tqdm(total=len(records), unit="ev", desc="export", disable=disable) as bar:
            _write(out, records, report, bar.update)
        return report
    streams = None
    if scope.org is not None:
        with tqdm(total=stop, unit="ev", desc="scan", disable=disable) as bar:
            streams = _org_streams(ledger, scope.org, stop, bar.update)
    with tqdm(total=max(stop - start + 1, 0), unit="ev", desc="export",
              disable=disable) as bar:
        _write(out, _log(ledger, start, stop, streams, bar.update), report)
    return report


def _write(out: IO[str], records: Iterable[tuple[int, Any]], report: ExportReport,
           progress: Progress | None = None) -> None:
    for position, event in records:
        out.write(json.dumps(recorded_record(position, event), ensure_ascii=False) + "\n")
        report.count(position, event.fact)
        if progress is not None:
            progress(1)


def _log(ledger: StudyLedger, start: int, stop: int, streams: set[UUID] | None = None,
         progress: Progress | None = None) -> Iterator[tuple[int, Any]]:
    """(position, event) from `start` to `stop` in log order, of `streams` only if given."""
    while start <= stop:
        page = ledger.recorder.select_notifications(
            start=start, limit=min(PAGE, stop - start + 1), stop=stop)
        if not page:
            return
        for notification in page:
            if streams is None or UUID(str(notification.originator_id)) in streams:
                yield notification.id, ledger.mapper.to_domain_event(notification)
        if progress is not None:
            progress(page[-1].id - start + 1)
        start = page[-1].id + 1


def _org_streams(ledger: StudyLedger, org: str, stop: int, progress: Progress) -> set[UUID]:
    """The streams of an org subtree: its orgs, the learners placed in them now, and every
    org those learners' placements name, with the parents of all of these."""
    parents: dict[str, str | None] = {}
    placements: dict[str, list[RecordedFact]] = {}
    for _, event in _log(ledger, 1, stop, progress=progress):
        fact = event.fact
        if fact["type"] == "org.registered":
            parents[fact["payload"]["org_id"]] = fact["payload"]["parent_id"]
        elif fact["type"] in PLACEMENT_TYPES:
            placements.setdefault(fact["learner_id"], []).append(
                RecordedFact(event.event_id, fact))
    if org not in parents:
        raise OrgNotRegisteredError(f"org {org} is not registered", field="org")
    subtree = _subtree(org, parents)
    # The org a learner is in now, by the rule the boards use (the latest transfer stands).
    learners = {learner_id for learner_id, facts in placements.items()
                if current_org_id(facts) in subtree}
    named = {f.payload["org_id"] for learner_id in learners for f in placements[learner_id]}
    orgs = _with_parents(subtree | named, parents.get)
    return ({LearnerArchive.id_for(learner_id) for learner_id in learners}
            | {OrgUnit.id_for(org_id) for org_id in orgs})


def _subtree(org: str, parents: dict[str, str | None]) -> set[str]:
    children: dict[str, list[str]] = {}
    for child, parent in parents.items():
        if parent is not None:
            children.setdefault(parent, []).append(child)
    subtree, todo = set(), [org]
    while todo:
        current = todo.pop()
        if current not in subtree:
            subtree.add(current)
            todo.extend(children.get(current, []))
    return subtree


def _with_parents(orgs: set[str], parent_of: Callable[[str], str | None]) -> set[str]:
    found: set[str] = set()
    for org in orgs:
        current: str | None = org
        for _ in range(MAX_DEPTH):
            if current is None or current in found:
                break
            found.add(current)
            current = parent_of(current)
    return found


def _learner_streams(ledger: StudyLedger, learner_ids: Iterable[str]) -> set[UUID]:
    """The learners' streams and those of every org their placements name, with parents."""
    streams: set[UUID] = set()
    named: set[str] = set()
    for learner_id in learner_ids:
        archive = ledger.get_existing(LearnerArchive, LearnerArchive.id_for(learner_id))
        if archive is None:
            raise LearnerNotRegisteredError(f"learner {learner_id} is not registered")
        streams.add(archive.id)
        named.update(f.payload["org_id"] for f in ledger.facts_of(learner_id)
                     if f.type in PLACEMENT_TYPES)

    def parent_of(org_id: str) -> str | None:
        unit = ledger.get_existing(OrgUnit, OrgUnit.id_for(org_id))
        return None if unit is None else unit.parent_id

    return streams | {OrgUnit.id_for(org_id) for org_id in _with_parents(named, parent_of)}


def _streams_in_log_order(ledger: StudyLedger, streams: set[UUID], start: int,
                          stop: int) -> list[tuple[int, Any]]:
    """Every event of a few streams, with its position, in log order (no scan of the log)."""
    events: list[Any] = [ledger.mapper.to_domain_event(stored) for stream_id in streams
                         for stored in ledger.recorder.select_events(stream_id)]
    keys = [FactKey(e.event_id, e.originator_id, e.originator_version, "") for e in events]
    positions = ledger.fact_index.positions_of(keys)
    placed = [(positions[e.event_id], e) for e in events]
    return sorted((p for p in placed if start <= p[0] <= stop), key=lambda p: p[0])
