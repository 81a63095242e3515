"""The projection runner: polls the notification log and keeps the read views current.

SQLite has no push subscriptions, so the runner polls (on PostgreSQL too: one code path).
For each batch it brings every learner the batch touched up to the batch: a learner it
followed through earlier batches is folded on by the new facts alone and only its rows that
changed are written; any other is folded from its whole stream and written whole. The rows
go with the batch's last position in one transaction. Restarting resumes after the last
committed batch, with nothing remembered: every learner is then folded and written whole,
so nothing is counted twice.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from uuid import UUID

from domain.application import LoggedFact, StudyLedger
from domain.credits.lines import RecordedFact
from domain.errors import StoreUnavailableError, one_line
from domain.gc_pauses import fewer_gc_pauses
from domain.org_tree import chain_of
from projections.learner_views import (
    BalanceRow,
    LearnerFold,
    LearnerRow,
    OrgRow,
    SharedDocuments,
    apply_org_fact,
    learner_views,
)
from projections.ports import (
    ALL_ORGS,
    LeaseHeldError,
    NoLease,
    RunnerLease,
    RunnerState,
    ViewBatch,
    ViewsMovedError,
    ViewWriter,
)

Progress = Callable[[int], object]  # a tqdm bar's update fits
FaultPoint = Callable[[str], None]
# A batch of view rows and its position committed (a test may kill the process here).
PROJECT_AFTER_BATCH_COMMIT = "project.after_batch_commit"
log = logging.getLogger("studyledger.projections")

# While the store is down the runner tries again this often at most: a refused connection
# costs nothing, and the views should resume within seconds of the database returning.
STORE_RETRY_MAX_SECONDS = 2.0
# How often a runner standing by asks whether the lease has become free.
STANDBY_POLL_SECONDS = 1.0


class _FoldCache:
    """Recent learners' folds, so a batch folds only its new facts instead of reading and
    folding whole streams again.

    A fold keeps sums, first attempts and balance documents, not facts; the cache is
    bounded by learners and by the folds' weight (~KiB: some 300 MiB, ~5,000 demo cadres
    with five years of study). A learner evicted is read again from the store and written
    whole when a later batch touches it. Measured on a 10,000-cadre district followed in log
    order from zero: half that bound took 30% longer for a peak RSS only 8% lower (the
    process's peak is mostly the churn of the facts read, not the folds)."""

    def __init__(self, max_learners: int, max_weight: int = 300_000) -> None:
        self.max_learners = max_learners
        self.max_weight = max_weight
        self._folds: OrderedDict[UUID, tuple[LearnerFold, int]] = OrderedDict()
        self._held = 0

    def get(self, stream_id: UUID) -> LearnerFold | None:
        entry = self._folds.get(stream_id)
        if entry is None:
            return None
        self._folds.move_to_end(stream_id)
        return entry[0]

    def put(self, stream_id: UUID, fold: LearnerFold) -> None:
        """Keep `fold` (new, or one got from here and extended since)."""
        earlier = self._folds.get(stream_id)
        weight = fold.weight()
        self._held += weight - (earlier[1] if earlier is not None else 0)
        self._folds[stream_id] = (fold, weight)
        self._folds.move_to_end(stream_id)
        while len(self._folds) > self.max_learners or (
                self._held > self.max_weight and len(self._folds) > 1):
            _, (_, evicted) = self._folds.popitem(last=False)
            self._held -= evicted

    def clear(self) -> None:
        self._folds.clear()
        self._held = 0


class Projector:
    # Each batch recomputes every learner it touches, so catching up in large batches costs
    # far less (measured on the demo: 2,000 -> 1.3k ev/s, 50,000 -> 10k ev/s).
    def __init__(self, ledger: StudyLedger, views: ViewWriter, *, batch_size: int = 20_000,
                 cached_learners: int = 20_000, fault_point: FaultPoint | None = None,
                 retry_max_seconds: float = 30.0, lease: RunnerLease | None = None) -> None:
        self.ledger = ledger
        self.lease = lease or NoLease()
        self.views = views
        self.batch_size = batch_size
        self.retry_max_seconds = retry_max_seconds
        self.fault_point = fault_point or _no_faults
        self.cache = _FoldCache(cached_learners)
        # Balance documents learners share (projections.learner_views.SharedDocuments):
        # pure functions of what they are keyed by, so they outlive a batch that failed.
        self.documents = SharedDocuments()
        self.orgs: dict[str, OrgRow] = {}

    def lag(self) -> int:
        """Recorded facts the views have not caught up with."""
        return self.ledger.last_position() - self.views.position()

    def project_next(self, limit: int) -> int:
        """Apply the next batch of at most `limit` facts; returns how many it held."""
        after = self.views.position()
        with fewer_gc_pauses():
            page = self.ledger.read_log(after, limit)
            if not page:
                return 0
            self._apply(page, after)
        self.fault_point(PROJECT_AFTER_BATCH_COMMIT)
        return len(page)

    def run_once(self, progress: Progress | None = None) -> int:
        """Apply every recorded fact not yet projected; returns how many were applied."""
        applied = 0
        while True:
            try:
                count = self.project_next(self.batch_size)
            except ViewsMovedError:
                self.forget()  # another runner wrote meanwhile: go on from where it got to
                continue
            if not count:
                return applied
            applied += count
            if progress is not None:
                progress(count)

    def runner(self, stop: threading.Event, progress: Progress | None = None
               ) -> ProjectionRunner:
        """The step of a long-running projector (run it with consumers.running's
        run_until_stopped, then release the lease). A store that goes away is waited for;
        a fact that cannot be projected stalls the runner loudly (see ProjectionRunner)."""
        return ProjectionRunner(self, stop, progress)

    def forget(self) -> None:
        """Drop what the runner holds in memory, after a batch that did not commit."""
        self.cache.clear()
        self.orgs.clear()

    def replay(self, progress: Progress | None = None) -> int:
        """Rebuild every view from position zero; refused while another runner is active."""
        if not self.lease.hold():
            raise LeaseHeldError("another projection runner (serve or project) keeps this "
                                 "store's views: stop it before a replay")
        try:
            self.views.reset()
            self.forget()
            with fewer_gc_pauses():  # across batches too: the fact cache stays large
                applied = self._rebuild(progress)
                applied += self.run_once(progress)  # what was recorded meanwhile
            self.views.analyze()
        finally:
            self.lease.release()
        return applied

    def _rebuild(self, progress: Progress | None) -> int:
        """Every view from empty, through the log's current end, stream by stream.

        In log order a learner is recomputed from all its facts each time a batch touches
        it: a district whose learners each have a few facts in every batch folded some 25
        times more facts than it read. Here every stream is read and folded once; the orgs
        (their own streams) go first, so every learner's boards are known. The position
        moves only with the last batch, so a rebuild cut short leaves the views at zero
        (recomputed rows are simply recomputed again by whoever projects next)."""
        through = self.ledger.last_position()
        if not through:
            return 0
        org_facts = self.ledger.read_org_log(through)
        orgs = {}
        for logged in org_facts:
            org = self._org_row(logged.recorded)
            orgs[org.org_id] = org
        self.views.write(ViewBatch(0, [], [], list(orgs.values()),
                                   chains=self._org_chains(orgs), after=0,
                                   board_counts="later"))
        applied = len(org_facts)
        chains = self._org_chains({})
        after: tuple[UUID, int] | None = None
        pending: list[LoggedFact] = []
        while True:
            page = self.ledger.read_streams(through, after, self.batch_size)
            last_page = len(page) < self.batch_size
            if page:
                after = (page[-1].stream_id, page[-1].version)
            streams = _whole_streams(pending + page)
            # The page's last stream may go on in the next page: hold it back till then.
            pending = streams.pop() if not last_page and streams else []
            learners, balances, folded = self._fold_streams(streams)
            self.views.write(ViewBatch(through if last_page else 0, learners, balances, [],
                                       chains=chains, after=0,
                                       board_counts="all" if last_page else "later"))
            applied += folded
            if progress is not None:
                progress(folded)
            if last_page:
                return applied

    def _fold_streams(self, streams: list[list[LoggedFact]]
                      ) -> tuple[list[LearnerRow], list[BalanceRow], int]:
        """The view rows of whole learner streams (org streams were applied first)."""
        learners: list[LearnerRow] = []
        balances: list[BalanceRow] = []
        folded = 0
        for stream in streams:
            if stream[0].fact["learner_id"] is None:
                continue
            views = learner_views([logged.recorded for logged in stream],
                                  shared=self.documents)
            learners.append(views.learner)
            balances.extend(views.balances)
            folded += len(stream)
        return learners, balances, folded

    def _apply(self, page: Sequence[LoggedFact], after: int) -> None:
        by_stream: dict[UUID, list[LoggedFact]] = {}
        for logged in page:
            by_stream.setdefault(logged.stream_id, []).append(logged)
        batch = ViewBatch(page[-1].position, [], [], [], after=after)
        orgs: dict[str, OrgRow] = {}
        for stream_id, facts in by_stream.items():
            if facts[0].fact["learner_id"] is None:
                for logged in facts:
                    org = self._org_row(logged.recorded)
                    orgs[org.org_id] = org
                continue
            update = self._fold_through(stream_id, facts).update()
            if update.whole:
                batch.learners.append(update.learner)
                batch.balances.extend(update.balances)
            elif update.balances:
                batch.kept_learners.append(update.learner)
                batch.changed_balances.extend(update.balances)
                learner_id = update.learner.learner_id
                batch.scores_before.update(
                    ((learner_id, policy, period), score)
                    for (policy, period), score in update.scores_before.items())
        batch.orgs = list(orgs.values())
        batch.chains = self._org_chains(orgs)
        # A batch that fails to write is read again whole: its learners' folds, which went
        # on past what the views hold, no longer match their streams and are folded anew.
        self.views.write(batch)

    def _org_chains(self, batch_orgs: dict[str, OrgRow]) -> dict[str, list[str]]:
        """Every org's chain up the tree (itself first), ending with the all-orgs board."""
        parents = self.views.org_parents()
        parents |= {org.org_id: org.parent_id for org in batch_orgs.values()}
        return {org_id: [*chain_of(org_id, parents), ALL_ORGS] for org_id in parents}

    def _org_row(self, fact: RecordedFact) -> OrgRow:
        org_id = str(fact.payload["org_id"])
        current = self.orgs.get(org_id) or self.views.stored_org(org_id)
        self.orgs[org_id] = apply_org_fact(current, fact)
        return self.orgs[org_id]

    def _fold_through(self, stream_id: UUID, logged: list[LoggedFact]) -> LearnerFold:
        """The learner's fold up to the last of `logged`: the one kept since the previous
        batch folded on by these facts, else one of the stream read from the store."""
        first_version, last_version = logged[0].version, logged[-1].version
        new = [entry.recorded for entry in logged]
        fold = self.cache.get(stream_id)
        if first_version == 1:
            fold = LearnerFold(new, shared=self.documents)  # starts here: nothing to read
        elif fold is None or fold.folded != first_version - 1 or not fold.extend(new):
            fold = LearnerFold(self.ledger.stream_facts(stream_id, last_version),
                               shared=self.documents)
        self.cache.put(stream_id, fold)
        return fold


class ProjectionRunner:
    """One step of a long-running projector, and how it meets failures.

    The store unavailable: wait (retry every 2 s at most) and resume where the views stand.
    Any other failure: retry at once with batches half the size, down to one fact, so that
    every fact before the one that fails is projected and its position is known. Then the
    runner stalls there, loudly: the position and error are logged and stored for /health,
    and the fact is tried again with a backoff doubling up to `retry_max_seconds`, until it
    projects (the cause was fixed or removed). It is never skipped: views computed without
    a recorded fact would show wrong balances, and quietly; stale ones say that they are.
    """

    def __init__(self, projector: Projector, stop: threading.Event,
                 progress: Progress | None) -> None:
        self.projector, self.stop, self.progress = projector, stop, progress
        self.limit = projector.batch_size
        self.active: bool | None = None  # holds the lease; None: not asked yet
        self.store_wait = 0.0
        self.stalled_at: int | None = None
        self.stall_wait = 0.0

    def step(self) -> int | None:
        """One batch; how many facts it applied, or None after a failure or while standing
        by (waited out)."""
        try:
            if not self._holds_lease():
                self.stop.wait(STANDBY_POLL_SECONDS)
                return None
            applied = self.projector.project_next(self.limit)
            if applied and self.progress is not None:
                self.progress(applied)
        except ViewsMovedError as moved:
            log.warning("another runner wrote the views meanwhile (%s); going on from there",
                        moved)
            self.projector.forget()
            return None
        except StoreUnavailableError as exc:
            self.projector.forget()
            self._store_down(exc)
            return None
        except Exception as exc:  # noqa: BLE001 - any failure: narrowed down, then a stall
            self.projector.forget()
            self._failed(exc)
            return None
        if self.store_wait:
            log.info("store back; projections resume at position %d", self._position())
            self.store_wait = 0.0
        if applied:
            self.limit = min(self.projector.batch_size, self.limit * 2)
            if self.stalled_at is not None:
                log.warning("projection resumed: position %d projected", self.stalled_at)
                self.stalled_at = None
                self._record(RunnerState("running"))
        return applied

    def _holds_lease(self) -> bool:
        held = self.projector.lease.hold()
        if held and not self.active:
            self.projector.forget()  # whatever it held may be stale: another runner wrote
            log.warning("projection runner active: holds the lease of this store's views, "
                        "at position %d", self.projector.views.position())
        elif not held and self.active is not False:
            log.warning("another projection runner keeps this store's views; standing by "
                        "to take over when it stops")
        self.active = held
        return held

    def _store_down(self, exc: Exception) -> None:
        if not self.store_wait:
            log.warning("store unavailable; projections wait for it: %s", exc)
        self.store_wait = min(max(self.store_wait * 2, 0.25), STORE_RETRY_MAX_SECONDS)
        self.stop.wait(self.store_wait)

    def _failed(self, exc: Exception) -> None:
        if self.limit > 1:
            self.limit = max(1, self.limit // 2)
            log.warning("projection batch failed (%s); trying batches of %d to find the fact",
                        _describe(exc), self.limit)
            return
        try:
            position = self._position()
        except StoreUnavailableError as down:
            self._store_down(down)
            return
        if position != self.stalled_at:
            self.stalled_at = position
            self.stall_wait = min(1.0, self.projector.retry_max_seconds)
            log.error("projection stalled at position %d: the fact there cannot be projected "
                      "(%s); retrying with backoff until it can", position, _describe(exc),
                      exc_info=exc)
        else:
            self.stall_wait = min(self.stall_wait * 2, self.projector.retry_max_seconds)
            log.error("projection still stalled at position %d (next try in %.0f s): %s",
                      position, self.stall_wait, _describe(exc))
        self._record(RunnerState("stalled", position, _describe(exc)))
        self.stop.wait(self.stall_wait)

    def _position(self) -> int:
        return self.projector.views.position() + 1

    def _record(self, state: RunnerState) -> None:
        # While the store is down the log has it (and /health cannot be read either).
        with contextlib.suppress(StoreUnavailableError):
            self.projector.views.record_runner_state(state)


def _whole_streams(facts: list[LoggedFact]) -> list[list[LoggedFact]]:
    """Facts in stream order, cut into streams."""
    streams: list[list[LoggedFact]] = []
    for logged in facts:
        if streams and streams[-1][0].stream_id == logged.stream_id:
            streams[-1].append(logged)
        else:
            streams.append([logged])
    return streams


def _no_faults(point: str) -> None:
    """Every point passes: the production default."""


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {one_line(exc)}"[:500]
