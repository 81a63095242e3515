"""The read side's ports. What the projection runner is written against: where the views are
written (ViewWriter) and the lease that keeps one runner per store. What the API and the CLI
read them through (ReadViews). infra implements them (infra.views.writer, infra.views.reads,
infra.store.runner_lease); tests pass in-memory ones.

The names follow the event-sourcing library's projection runner: a view that records its
own position (`position`, `write` of a batch with its new position, in one transaction).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

from projections.answers import ComplianceAnswer, OrgStatistics, RankAnswer
from projections.audit_trail import TrailPage
from projections.learner_views import BalanceRow, LearnerRow, OrgRow
from projections.ranking_board import BoardAnswer

# The board of every org at once (`--org` omitted) is kept as the board of this pseudo-org.
ALL_ORGS = "*"


@dataclass(frozen=True)
class RunnerState:
    """What the projection runner last reported: running, or stalled at a log position
    (the fact there cannot be projected) with the error."""

    status: str
    position: int | None = None
    error: str | None = None


@dataclass
class ViewBatch:
    """Everything one batch changes, and the notification position it brings the views to."""

    position: int
    learners: list[LearnerRow]
    balances: list[BalanceRow]
    orgs: list[OrgRow]
    # org -> the org, its ancestors and ALL_ORGS: the boards a member of that org is on
    chains: dict[str, list[str]] = field(default_factory=dict)
    # The position the views stood at when the batch was read; None: not checked.
    after: int | None = None
    # Which board counts to recompute with the batch: those of the orgs it touched; none
    # (a rebuild writing many batches counts once, at its end); or every board.
    board_counts: Literal["touched", "later", "all"] = "touched"
    # Learners whose directory row (and so board membership) is the one the views hold:
    # only their balance rows that changed are written (learners keeps those replaced whole).
    # Their periods are only ever added to: a void makes a learner one written whole.
    kept_learners: list[LearnerRow] = field(default_factory=list)
    changed_balances: list[BalanceRow] = field(default_factory=list)
    # The board score the views hold for each changed cycle row of a kept learner (none:
    # the row is new), so that board counts move by the difference.
    scores_before: dict[tuple[str, str, str], int] = field(default_factory=dict)


class ViewsMovedError(Exception):
    """The views are no longer where the batch was read from: another runner wrote them."""


class ViewWriter(Protocol):
    def position(self) -> int:
        """The log position the views have applied, 0 when empty."""

    def write(self, batch: ViewBatch) -> None:
        """Apply one batch and move the position, atomically; ViewsMovedError when the
        views are no longer at `batch.after`."""

    def org_parents(self) -> dict[str, str | None]:
        """org -> parent org of every org in the views."""

    def stored_org(self, org_id: str) -> OrgRow | None: ...

    def reset(self) -> None:
        """Empty every view and the position (a replay starts from zero)."""

    def analyze(self) -> None:
        """Fresh planner statistics, after a rebuild changed every table's size."""

    def record_runner_state(self, state: RunnerState) -> None: ...


class RunnerLease(Protocol):
    def hold(self) -> bool:
        """True while this process holds the lease, trying to take it when it does not;
        StoreUnavailableError when that cannot be known."""

    def release(self) -> None: ...


class NoLease:
    """For a projector that is alone by construction (tests, benches): always held."""

    def hold(self) -> bool:
        return True

    def release(self) -> None:
        pass


class LeaseHeldError(RuntimeError):
    """Another projection runner holds the views of this store."""


class ReadViews(Protocol):
    """Queries over the projected read tables (and the store where a view has no answer)."""

    def close(self) -> None:
        """Give back every connection the reads opened."""

    def position(self) -> int: ...

    def runner_state(self) -> tuple[str, int | None, str | None] | None:
        """(status, position, error) the projection runner last reported: "running", or
        "stalled" at the log position of a fact it cannot project. None: never reported."""

    def learner_org(self, learner_id: str) -> str | None: ...

    def org_exists(self, org_id: str) -> bool: ...

    def org_table(self) -> list[tuple[str, str, str | None, bool | None]]:
        """(org_id, name, parent_id, board_published) of every org."""

    def in_subtree(self, org_id: str, ancestor: str) -> bool: ...

    def learner_balance(self, learner_id: str, policy: str, period: str
                        ) -> tuple[str | None, str | None]:
        """(the learner's org or None, the stored balance answer or None)."""

    def board(self, policy: str, period: str, *, org: str | None, limit: int,
              cursor: str | None, anonymous: bool) -> BoardAnswer:
        """Cursors in and out are sealed (api.cursors): opaque, bound to this board, and
        InvalidCursorError for any other."""

    def board_is_public(self, org: str) -> bool: ...

    def rank(self, policy: str, period: str, learner_id: str,
             org: str | None) -> RankAnswer: ...

    def compliance(self, org: str, policy: str, period: str) -> ComplianceAnswer: ...

    def org_statistics(self, org: str, policy: str, year: int) -> OrgStatistics: ...

    def find_learners(self, org: str, text: str, limit: int) -> list[tuple[str, str, str]]:
        """(learner_id, name, org_id) under `org` whose id is `text` or whose name holds it."""

    def stored_periods(self, policy: str) -> list[str]:
        """The periods the views hold any learner's balance for, under `policy`."""

    def history(self, learner_id: str, *, known_at: datetime | None,
                happened_by: datetime | None, limit: int, cursor: str | None) -> TrailPage:
        """Cursors sealed as the board's, bound to this learner."""
