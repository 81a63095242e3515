"""The projection runner against an in-memory log and an in-memory ViewWriter: what it writes,
in which batches, and how it meets a writer that moved, a replay and a lease held elsewhere.

The log is the aggregates' own events (recorded through their rules) numbered in order: a
StudyLedger on the library's in-memory store cannot record facts (the write path needs the
fact-key index only the SQL recorders have), and the runner reads only read_log,
last_position, stream_facts, and for a rebuild read_streams and read_org_log.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import pytest

from domain.application import LoggedFact
from domain.archive import ChainedAggregate, LearnerArchive, OrgUnit
from domain.credits.lines import RecordedFact
from domain.facts import ORG_FACT_TYPES, IncomingFact
from projections.learner_views import BalanceRow, LearnerRow, OrgRow, learner_views
from projections.ports import (
    ALL_ORGS,
    LeaseHeldError,
    RunnerState,
    ViewBatch,
    ViewsMovedError,
)
from projections.runner import Projector
from tests.factories import REGISTRATION, incoming

IN_2022 = "2022-05-01T10:00:00+08:00"


class MemoryLog:
    """The three reads the runner makes of a StudyLedger, over facts recorded in memory."""

    def __init__(self) -> None:
        self.logged: list[LoggedFact] = []
        self.aggregates: dict[UUID, ChainedAggregate] = {}
        self.stream_reads = 0

    def record(self, *facts: IncomingFact) -> None:
        for fact in facts:
            aggregate = self._apply(fact)
            for event in aggregate.collect_events():
                self.logged.append(LoggedFact(
                    len(self.logged) + 1, aggregate.id, event.originator_version,
                    event.event_id, event.fact, event.timestamp, event.hash, event.prev_hash))

    def _apply(self, fact: IncomingFact) -> ChainedAggregate:
        cls: Any = OrgUnit if fact.type in ORG_FACT_TYPES else LearnerArchive
        key = (fact.canonical["payload"]["org_id"] if cls is OrgUnit
               else fact.canonical["learner_id"])
        aggregate = self.aggregates.get(cls.id_for(key))
        if aggregate is None:
            aggregate = cls.register(fact, "test")
            self.aggregates[aggregate.id] = aggregate
        else:
            aggregate.record(fact, "test")
        return aggregate

    def read_log(self, after: int, limit: int) -> list[LoggedFact]:
        return self.logged[after:after + limit]

    def last_position(self) -> int:
        return len(self.logged)

    def read_streams(self, through: int, after: tuple[UUID, int] | None, limit: int
                     ) -> list[LoggedFact]:
        ordered = sorted(self.logged[:through], key=lambda e: (e.stream_id.int, e.version))
        start = (after[0].int, after[1]) if after is not None else (-1, 0)
        return [e for e in ordered if (e.stream_id.int, e.version) > start][:limit]

    def read_org_log(self, through: int) -> list[LoggedFact]:
        return [e for e in self.logged[:through] if e.fact["learner_id"] is None]

    def stream_facts(self, stream_id: UUID, through_version: int | None = None
                     ) -> list[RecordedFact]:
        self.stream_reads += 1
        return [entry.recorded for entry in self.logged if entry.stream_id == stream_id
                and (through_version is None or entry.version <= through_version)]


@dataclass
class MemoryViews:
    """A ViewWriter in dicts, with the SQL writer's fence: a batch read at another position
    than the views stand at is refused."""

    at: int = 0
    learners: dict[str, LearnerRow] = field(default_factory=dict)
    balances: dict[tuple[str, str, str], BalanceRow] = field(default_factory=dict)
    orgs: dict[str, OrgRow] = field(default_factory=dict)
    members: dict[str, set[str]] = field(default_factory=dict)  # board org -> learners
    batches: list[ViewBatch] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    states: list[RunnerState] = field(default_factory=list)
    before_write: Callable[[], None] | None = None  # once, as another runner would

    def position(self) -> int:
        return self.at

    def write(self, batch: ViewBatch) -> None:
        if self.before_write is not None:
            meanwhile, self.before_write = self.before_write, None
            meanwhile()
        if batch.after is not None and batch.after != self.at:
            raise ViewsMovedError(f"views at position {self.at}, not {batch.after}")
        self.calls.append("write")
        self.batches.append(batch)
        for row in batch.learners:
            for key in [k for k in self.balances if k[0] == row.learner_id]:
                del self.balances[key]
            for board in self.members.values():
                board.discard(row.learner_id)
            self.learners[row.learner_id] = row
            for org in batch.chains[row.org_id]:
                self.members.setdefault(org, set()).add(row.learner_id)
        for b in batch.balances + batch.changed_balances:
            self.balances[(b.learner_id, b.policy, b.period)] = b
        self.orgs |= {org.org_id: org for org in batch.orgs}
        self.at = batch.position

    def org_parents(self) -> dict[str, str | None]:
        return {org.org_id: org.parent_id for org in self.orgs.values()}

    def stored_org(self, org_id: str) -> OrgRow | None:
        return self.orgs.get(org_id)

    def reset(self) -> None:
        self.calls.append("reset")
        self.at = 0
        self.learners, self.balances, self.orgs, self.members = {}, {}, {}, {}

    def analyze(self) -> None:
        self.calls.append("analyze")

    def record_runner_state(self, state: RunnerState) -> None:
        self.states.append(state)

    def rows(self) -> tuple[Any, ...]:
        """Everything a reader sees."""
        return (self.at, self.learners, self.balances, self.orgs,
                {org: board for org, board in self.members.items() if board})


class Lease:
    def __init__(self, held: bool) -> None:
        self.held = held
        self.released = 0

    def hold(self) -> bool:
        return self.held

    def release(self) -> None:
        self.released += 1


# -- facts: R -> A -> A1, R -> B; four learners ------------------------------------------

def org(org_id: str, parent: str | None = None) -> IncomingFact:
    return incoming("org.registered", {"org_id": org_id, "name": f"单位{org_id}",
                                       "parent_id": parent}, learner_id=None)


def publish(org_id: str, published: bool) -> IncomingFact:
    return incoming("org.board_published", {"org_id": org_id, "published": published},
                    learner_id=None)


def learner(learner_id: str, org_id: str) -> IncomingFact:
    return incoming("learner.registered", REGISTRATION | {"org_id": org_id},
                    learner_id=learner_id, at="2021-01-04T09:00:00+08:00")


def training(learner_id: str, hours: int) -> IncomingFact:
    return incoming("training.attended", {"program_id": "P", "kind": "thematic",
                                          "hours": hours, "leave_hours": 0},
                    learner_id=learner_id, at=IN_2022)


def transfer(learner_id: str, org_id: str) -> IncomingFact:
    return incoming("learner.transferred", {"org_id": org_id}, learner_id=learner_id,
                    at="2023-01-01T00:00:00+08:00")


def void(learner_id: str, target: IncomingFact) -> IncomingFact:
    return incoming("record.voided", {"target_event_id": str(target.event_id),
                                      "reason": "代学代考"}, learner_id=learner_id, at=IN_2022)


def district() -> MemoryLog:
    """23 facts; L1's stream is spread over the whole log."""
    log = MemoryLog()
    fraud = training("L2", 200)
    log.record(org("R"), org("A", "R"), org("A1", "A"), org("B", "R"), learner("L1", "A"),
               training("L1", 40), publish("A", True), learner("L2", "A1"), fraud,
               learner("L3", "B"), training("L1", 80), training("L3", 8), learner("L4", "R"),
               training("L2", 40), void("L2", fraud), transfer("L1", "B"), publish("A", False),
               training("L1", 4), org("C", "B"), transfer("L3", "C"), training("L4", 12),
               training("L3", 16), training("L1", 1))
    return log


def run(log: MemoryLog, batch_size: int = 20_000, **options: Any) -> MemoryViews:
    views = MemoryViews()
    Projector(log, views, batch_size=batch_size, **options).run_once()  # type: ignore[arg-type]
    return views


def projector(log: MemoryLog, views: MemoryViews, **options: Any) -> Projector:
    return Projector(log, views, **options)  # type: ignore[arg-type]


def followed(log: MemoryLog, **options: Any) -> tuple[MemoryViews, Projector]:
    """Views a runner has brought up to the end of the log, and that runner (which now
    holds a fold of every learner)."""
    views = MemoryViews()
    runner = projector(log, views, **options)
    runner.run_once()
    return views, runner


# -- run_once ----------------------------------------------------------------------------

def test_run_once_applies_every_fact_and_stops_at_the_last_position():
    log = district()
    views = MemoryViews()
    runner = projector(log, views)
    assert runner.run_once() == 23
    assert views.position() == log.last_position() == 23
    assert runner.lag() == 0
    assert runner.run_once() == 0  # nothing new: nothing written
    assert len(views.batches) == 1


def test_run_once_writes_each_learners_rows_from_all_of_its_facts():
    log = district()
    views = run(log)
    for learner_id in ("L1", "L2", "L3", "L4"):
        expected = learner_views(log.stream_facts(LearnerArchive.id_for(learner_id)))
        assert views.learners[learner_id] == expected.learner
        assert [b for b in views.balances.values() if b.learner_id == learner_id] == (
            expected.balances)


def test_the_views_follow_transfers_voids_and_board_choices():
    views = run(district())
    assert {k: v.org_id for k, v in views.learners.items()} == {
        "L1": "B", "L2": "A1", "L3": "C", "L4": "R"}
    cycle = {k[0]: v.score_cents for k, v in views.balances.items()
             if k[1:] == ("dadukou-double-100", "2021-2025")}
    # L1 40+80+4+1 hours /4; L2's 200 hours are voided, 40 stand; L3 8+16; L4 12
    assert cycle == {"L1": 3125, "L2": 1000, "L3": 600, "L4": 300}
    assert views.orgs["A"].board_published is False
    assert views.orgs["C"] == OrgRow("C", "单位C", "B", None)


def test_a_later_run_applies_only_what_was_recorded_since():
    log = district()
    views, runner = followed(log, batch_size=5)
    log.record(training("L4", 400))
    written = len(views.batches)
    assert runner.run_once() == 1
    batch = views.batches[written]
    assert batch.learners == [] and batch.kept_learners == [views.learners["L4"]]
    changed = {(b.learner_id, b.policy, b.period) for b in batch.changed_balances}
    assert ("L4", "dadukou-double-100", "2022") in changed
    assert ("L4", "dadukou-double-100", "2021") not in changed  # the training is in 2022
    assert views.balances[("L4", "dadukou-double-100", "2021-2025")].score_cents == 10300
    assert views.rows() == run(log).rows()


def test_a_learner_whose_directory_row_changes_is_written_whole():
    log = district()
    views, runner = followed(log)
    log.record(transfer("L4", "A1"))
    written = len(views.batches)
    runner.run_once()
    batch = views.batches[written]
    assert batch.learners == [views.learners["L4"]] and batch.kept_learners == []
    assert {b.learner_id for b in batch.balances} == {"L4"}
    assert len(batch.balances) == len([k for k in views.balances if k[0] == "L4"])
    assert "L4" in views.members["A1"]


def test_a_learner_with_a_void_in_the_batch_is_written_whole_and_loses_the_voided_cycle():
    log = district()
    later = incoming("training.attended", {"program_id": "P", "kind": "thematic",
                                           "hours": 8, "leave_hours": 0},
                     learner_id="L4", at="2026-05-01T10:00:00+08:00")
    log.record(later)
    views, runner = followed(log)
    assert ("L4", "dadukou-double-100", "2026-2030") in views.balances
    reads = log.stream_reads
    log.record(void("L4", later))
    runner.run_once()
    assert views.batches[-1].learners == [views.learners["L4"]]
    assert log.stream_reads == reads + 1  # folded anew from the whole stream
    assert ("L4", "dadukou-double-100", "2026-2030") not in views.balances
    assert views.rows() == run(log).rows()


def test_a_batch_that_fails_to_write_leaves_nothing_remembered_that_the_views_lack():
    log = district()
    views, runner = followed(log)
    log.record(training("L4", 400))

    def refuse() -> None:
        raise RuntimeError("disk full")

    views.before_write = refuse
    with pytest.raises(RuntimeError):
        runner.run_once()
    runner.run_once()  # the same batch again: the views must get its rows
    assert views.rows() == run(log).rows()


def test_progress_hears_of_each_batch():
    heard: list[int] = []
    projector(district(), MemoryViews(), batch_size=10).run_once(heard.append)
    assert heard == [10, 10, 3]


@pytest.mark.parametrize("batch_size", [1, 2, 3, 7, 22])
def test_batches_of_any_size_give_the_views_of_one_batch(batch_size):
    log = district()
    whole = run(log)
    in_batches = run(log, batch_size=batch_size)
    assert len(in_batches.batches) == -(-23 // batch_size)
    assert in_batches.rows() == whole.rows()


def test_each_batch_is_written_with_its_last_position_and_the_position_it_was_read_at():
    views = run(district(), batch_size=10)
    assert [(b.after, b.position) for b in views.batches] == [(0, 10), (10, 20), (20, 23)]


def test_a_runner_that_remembers_no_learner_reads_the_streams_and_writes_the_same_views():
    log = district()
    remembering = run(log, batch_size=4)
    reads_with_memory = log.stream_reads
    forgetting = run(log, batch_size=4, cached_learners=0)
    assert reads_with_memory == 1  # only L2, folded anew for its void; the rest followed
    assert log.stream_reads > 0
    assert forgetting.rows() == remembering.rows()


# -- another runner meanwhile ------------------------------------------------------------

def test_a_batch_refused_because_the_views_moved_is_redone_from_where_the_other_runner_got_to():
    log = district()
    views = MemoryViews()
    other = projector(log, views, batch_size=5)
    views.before_write = lambda: other.project_next(5)  # writes 1..5 under our batch
    runner = projector(log, views, batch_size=10)
    applied = runner.run_once()
    assert views.position() == 23
    assert [(b.after, b.position) for b in views.batches] == [(0, 5), (5, 15), (15, 23)]
    assert applied == 18  # its first batch, read at 0, never committed
    assert views.rows() == run(log).rows()


def test_a_refused_batch_surfaces_from_a_single_step():
    log = district()
    views = MemoryViews()
    other = projector(log, views)
    views.before_write = other.run_once
    with pytest.raises(ViewsMovedError):
        projector(log, views).project_next(10)


# -- replay ------------------------------------------------------------------------------

def test_replay_empties_the_views_then_rebuilds_them_from_the_start():
    log = district()
    views = run(log)
    views.learners["ghost"] = LearnerRow("ghost", "x", "R", "r", 2021)  # not in the log
    lease = Lease(held=True)
    views.calls.clear()
    assert projector(log, views, batch_size=10, lease=lease).replay() == 23
    assert views.calls[0] == "reset" and views.calls[-1] == "analyze"
    assert set(views.calls[1:-1]) == {"write"}
    assert views.rows() == run(log).rows()
    assert lease.released == 1


def test_a_rebuild_reads_each_stream_once_and_moves_the_position_only_with_its_last_batch():
    log = district()
    views = MemoryViews()
    assert projector(log, views, batch_size=5, lease=Lease(held=True)).replay() == 23
    assert log.stream_reads == 0
    positions = [batch.position for batch in views.batches]
    assert positions[-1] == 23 and set(positions[:-1]) == {0}
    assert views.batches[0].orgs and not views.batches[0].learners  # the orgs go first
    assert [b.board_counts for b in views.batches] == ["later"] * (len(positions) - 1) + ["all"]
    folded = [row.learner_id for batch in views.batches for row in batch.learners]
    assert sorted(folded) == ["L1", "L2", "L3", "L4"]  # each learner folded once


@pytest.mark.parametrize("batch_size", [1, 2, 3, 4, 7, 22, 23, 100])
def test_a_rebuild_in_batches_of_any_size_gives_the_views_of_a_run_in_log_order(batch_size):
    log = district()  # L1's stream (7 facts) is longer than the smaller batches
    views = MemoryViews()
    projector(log, views, batch_size=batch_size, lease=Lease(held=True)).replay()
    assert views.rows() == run(log).rows()


def test_what_is_recorded_after_a_rebuild_read_the_end_of_the_log_is_applied_in_order():
    log = district()
    views = MemoryViews()
    later = [training("L4", 3), learner("L5", "C"), training("L5", 6)]
    views.before_write = lambda: log.record(*later)  # recorded while the rebuild writes
    assert projector(log, views, batch_size=10, lease=Lease(held=True)).replay() == 26
    assert views.position() == 26
    assert views.rows() == run(log).rows()


def test_a_replay_is_refused_while_another_runner_holds_the_lease():
    log = district()
    views = run(log)
    before = views.rows()
    views.calls.clear()
    with pytest.raises(LeaseHeldError):
        projector(log, views, lease=Lease(held=False)).replay()
    assert views.calls == []  # nothing reset, nothing written
    assert views.rows() == before


# -- the board chains --------------------------------------------------------------------

def test_each_org_chain_lists_the_org_its_ancestors_then_all_orgs():
    views = run(district())
    [batch] = views.batches
    assert batch.chains == {
        "R": ["R", ALL_ORGS], "A": ["A", "R", ALL_ORGS], "A1": ["A1", "A", "R", ALL_ORGS],
        "B": ["B", "R", ALL_ORGS], "C": ["C", "B", "R", ALL_ORGS]}


def test_a_batch_without_org_facts_still_chains_the_orgs_already_in_the_views():
    log = district()
    views = MemoryViews()
    runner = projector(log, views)
    runner.run_once()
    log.record(training("L2", 4))
    runner.run_once()
    assert views.batches[-1].orgs == []
    assert views.batches[-1].chains["A1"] == ["A1", "A", "R", ALL_ORGS]


def test_a_learner_sits_on_the_boards_of_its_org_and_every_org_above():
    views = run(district())
    assert {org for org, board in views.members.items() if "L3" in board} == {
        "C", "B", "R", ALL_ORGS}
    assert views.members["A"] == {"L2"}  # L1 left A for B
