"""What the read tables hold for one learner, as a pure function of the learner's facts.

The rows are folded from the facts in stream order by the same credit fold the calculus
uses (domain.credits.lines.CreditFold), so they equal the balance answers exactly; a fold
kept between batches gives the rows a fold of all the facts at once gives, whatever batches
the facts arrived in (a void, which changes which facts stand, is folded from the start).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from uuid import UUID

from domain.credits.balance import (
    ZERO,
    Ledger,
    LedgerInputs,
    Period,
    Registration,
    RequiredSpan,
    answer_without_learner,
    registration_of,
    with_learner_id,
)
from domain.credits.lines import CreditFold, RecordedFact, active_facts, add_to_yearly
from domain.policy.pack import SHIPPED_PACKS, PolicyPack, load_pack


@dataclass(frozen=True)
class LearnerRow:
    learner_id: str
    name: str
    org_id: str
    rank: str
    registered_year: int


@dataclass(frozen=True)
class BalanceRow:
    learner_id: str
    policy: str
    period: str
    is_cycle: bool
    status: str
    score_cents: int  # the board score, exact, in hundredths
    required_hours_cents: int  # hours of required courses completed in the period
    body: str  # the balance answer as JSON


@dataclass(frozen=True)
class LearnerViews:
    learner: LearnerRow
    balances: list[BalanceRow]


@dataclass(frozen=True)
class LearnerUpdate:
    """What a batch changes of one learner's rows."""

    learner: LearnerRow
    whole: bool  # every row of the learner is given: the stored ones are all replaced
    balances: list[BalanceRow]  # whole: all of them; otherwise those that changed
    # The board score each changed cycle row had before, when not whole.
    scores_before: dict[tuple[str, str], int] = field(default_factory=dict)


def score_cents(score: Decimal) -> int:
    return int((score * 100).to_integral_value())


class UnitOfLearner:
    """Which unit a learner is in, fed the learner's standing facts in stream order.

    The unit of the latest transfer by occurred_at (ties: the one recorded later), else the
    unit of registration: platforms may send transfers out of order. A transfer dated
    before the registration does not move the learner, as in the archive (LearnerArchive).
    """

    def __init__(self, registration: RecordedFact) -> None:
        self._latest = (registration.occurred_at, -1, str(registration.payload["org_id"]))

    def standing(self, fact: RecordedFact, index: int) -> None:
        """The fact at `index` among the standing facts."""
        if fact.type == "learner.transferred" and (fact.occurred_at, index) > self._latest[:2]:
            self._latest = (fact.occurred_at, index, str(fact.payload["org_id"]))

    @property
    def org_id(self) -> str:
        return self._latest[2]


def current_org_id(facts: Sequence[RecordedFact]) -> str:
    """The unit a learner's facts put it in now (UnitOfLearner)."""
    unit = UnitOfLearner(next(f for f in facts if f.type == "learner.registered"))
    for index, fact in enumerate(active_facts(facts)):
        unit.standing(fact, index)
    return unit.org_id


def periods_to_show(pack: PolicyPack, years: Iterable[int]) -> list[Period]:
    """Each cycle holding any of `years`, and every year of those cycles."""
    cycles = sorted({pack.cycle_of(year) for year in years})
    periods: list[Period] = []
    for first, last in cycles:
        periods.append(Period(first, last))
        periods.extend(Period(year, year) for year in range(first, last + 1))
    return periods


class SharedDocuments:
    """Balance documents, as answer_without_learner makes them, shared between learners.

    A document is a function of its pack, its period, the learner's rank and first required
    year, and the yearly sums it reads (Ledger.inputs over its cycle's start through its
    end); the learner's id is put in front of it. Learners with few facts share most of
    theirs: a year with little in it reads alike for many cadres of a rank. Only documents
    that read a few sums are shared: measured on the demo district, those reading five or
    more almost never recurred (15 times in ~40,000), and hashing their sums cost more than
    it saved. Bounded: the oldest documents go first.
    """

    MAX_SUMS_SHARED = 4

    def __init__(self, max_documents: int = 20_000) -> None:
        self.max_documents = max_documents
        # key -> (the pack, status, document without the learner, board score in cents);
        # the key holds the pack's id(), so the pack is kept to check it is the same one.
        self._documents: dict[tuple[object, ...], tuple[PolicyPack, str, bytes, int]] = {}

    def __len__(self) -> int:
        return len(self._documents)

    def row(self, ledger: Ledger, registration: Registration, span: RequiredSpan,
            period: Period, inputs: LedgerInputs, required_hours_cents: int) -> BalanceRow:
        """The balance row of one learner's period; `inputs` are the ledger's over the years
        the period reads, `span` the learner's under the ledger's pack."""
        pack = ledger.pack
        shared = sum(len(sums) for sums in inputs if sums) <= self.MAX_SUMS_SHARED
        key = (id(pack), period, registration.rank, span.from_year, inputs) if shared else None
        found = self._documents.get(key) if key is not None else None
        if found is None or found[0] is not pack:
            status, rest = answer_without_learner(ledger, registration.rank, span, period)
            found = (pack, status, rest, score_cents(ledger.board_score(period.years)))
            if key is not None:
                if len(self._documents) >= self.max_documents:
                    del self._documents[next(iter(self._documents))]
                self._documents[key] = found
        _, status, rest, score = found
        return BalanceRow(
            learner_id=registration.learner_id, policy=pack.id, period=str(period),
            is_cycle=period.is_cycle, status=status, score_cents=score,
            required_hours_cents=required_hours_cents,
            body=with_learner_id(registration.learner_id, rest).decode())


def learner_views(
    facts: Sequence[RecordedFact], packs: Sequence[PolicyPack] | None = None,
    shared: SharedDocuments | None = None,
) -> LearnerViews:
    """The directory row and every balance row (each pack, cycle and year) of one learner."""
    return LearnerFold(facts, packs, shared).views()


class LearnerFold:
    """One learner's view rows, kept current as the learner's facts arrive in stream order.

    `learner_views` is this fold over all of a learner's facts at once. The projection
    runner keeps a fold per recent learner, so a batch folds only its new facts, and a
    balance document is built again only when what it is made of changed: a period's answer
    is a function of the registration and of the yearly sums of each category from the start
    of the period's cycle to the period's end (the annual check counts cumulatively).

    The fold keeps sums, not facts (a learner's history can be long). A void changes which
    facts stand, so `extend` refuses one: the learner is folded anew from its whole stream.
    """

    def __init__(self, facts: Sequence[RecordedFact],
                 packs: Sequence[PolicyPack] | None = None,
                 shared: SharedDocuments | None = None) -> None:
        self.packs = list(packs or [load_pack(pack_id) for pack_id in SHIPPED_PACKS])
        self._shared = shared if shared is not None else SharedDocuments(64)
        self.folded = 0  # facts of the stream folded, standing or not
        self._registration = registration_of(facts)
        first = facts[0]
        assert first.type == "learner.registered", "a learner's stream starts registered"
        self._learner = LearnerRow(
            learner_id=str(first.fact["learner_id"]), name=str(first.payload["name"]),
            org_id=str(first.payload["org_id"]), rank=str(first.payload["rank"]),
            registered_year=first.occurred_at.astimezone(self.packs[0].zone).year)
        self._unit = UnitOfLearner(first)
        self._credits = {pack.id: CreditFold(pack, keep_lines=False) for pack in self.packs}
        self._voided = {UUID(f.payload["target_event_id"]) for f in facts
                        if f.type == "record.voided"}
        self._standing = 0
        self._required_sessions: set[UUID] = set()
        self._documents: dict[tuple[str, Period], tuple[object, BalanceRow]] = {}
        # pack -> (its CreditFold's changes when made, its rows): a batch that earned
        # nothing under a pack (a session short of completion) leaves its rows as they were.
        self._shown: dict[str, tuple[int, list[BalanceRow]]] = {}
        # What the last update() reported: the directory row and each balance row shown.
        self._reported_row: LearnerRow | None = None
        self._reported: dict[tuple[str, str], BalanceRow] = {}
        for fact in facts:
            self._fold(fact)

    def extend(self, facts: Iterable[RecordedFact]) -> bool:
        """Fold the learner's next facts (those after the ones folded so far); False, with
        nothing folded, when they hold a void: fold the whole stream anew."""
        new = list(facts)
        if any(fact.type == "record.voided" for fact in new):
            return False
        for fact in new:
            self._fold(fact)
        return True

    def _fold(self, fact: RecordedFact) -> None:
        self.folded += 1
        if fact.type == "study_session.recorded" and fact.payload["required"]:
            self._required_sessions.add(fact.event_id)
        if fact.type == "record.voided" or fact.event_id in self._voided:
            return  # as active_facts: neither a void nor its target stands
        self._unit.standing(fact, self._standing)
        self._standing += 1
        for credits in self._credits.values():
            credits.add(fact)

    def learner_row(self) -> LearnerRow:
        row = self._learner
        org_id = self._unit.org_id
        if org_id == row.org_id:
            return row
        return LearnerRow(row.learner_id, row.name, org_id, row.rank, row.registered_year)

    def views(self) -> LearnerViews:
        balances: list[BalanceRow] = []
        for pack in self.packs:
            credits = self._credits[pack.id]
            shown = self._shown.get(pack.id)
            if shown is None or shown[0] != credits.changes:
                shown = self._shown[pack.id] = (credits.changes, self._balances(pack, credits))
            balances.extend(shown[1])
        return LearnerViews(self.learner_row(), balances)

    def _balances(self, pack: PolicyPack, credits: CreditFold) -> list[BalanceRow]:
        """The balance rows of one pack: those whose inputs did not change are the ones
        made before."""
        registration = self._registration
        balances: list[BalanceRow] = []
        yearly = {key: list(sums) for key, sums in credits.own_yearly.items()}
        required_by_year: dict[int, Decimal] = {}
        for _, line in credits.once_only_lines():
            add_to_yearly(yearly, line)
            # Sessions earn no lines of their own: only completions can be required.
            if line.event_id in self._required_sessions:
                required_by_year[line.year] = (required_by_year.get(line.year, ZERO)
                                               + line.amount)
        ledger = Ledger.of_yearly(pack, yearly)
        registered = registration.year(pack)
        span = RequiredSpan.of(pack, registered)
        years = {year for _, year in yearly} | {registered}
        for period in periods_to_show(pack, years):
            required_hours = score_cents(sum(
                (required_by_year.get(year, ZERO) for year in period.years), ZERO))
            cycle_first = pack.cycle_of(period.first)[0]
            # The registration is the stream's first fact: the same for every call.
            read = ledger.inputs(range(cycle_first, period.last + 1))
            inputs = (required_hours, read)
            kept = self._documents.get((pack.id, period))
            if kept is not None and kept[0] == inputs:
                balances.append(kept[1])
                continue
            row = self._shared.row(ledger, registration, span, period, read, required_hours)
            self._documents[(pack.id, period)] = (inputs, row)
            balances.append(row)
        return balances

    def update(self) -> LearnerUpdate:
        """The rows now, as what changed since the previous update (every row, the first
        time and whenever the directory row changed)."""
        views = self.views()
        shown = {(row.policy, row.period): row for row in views.balances}
        reported = self._reported
        if views.learner != self._reported_row:
            update = LearnerUpdate(views.learner, True, views.balances)
        else:
            # Without a void, periods are only ever added: every reported one is still shown.
            changed = [row for key, row in shown.items() if reported.get(key) is not row]
            update = LearnerUpdate(views.learner, False, changed, {
                (row.policy, row.period): reported[(row.policy, row.period)].score_cents
                for row in changed if row.is_cycle and (row.policy, row.period) in reported})
        self._reported_row, self._reported = views.learner, shown
        return update

    def weight(self) -> int:
        """What the fold holds, in KiB or so (measured with tracemalloc on the demo: ~2 per
        balance document, ~1 per course or exam attempted, sums and sets included; a cadre
        with five years of study weighs ~60): the runner's cache bounds the sum."""
        return 2 * len(self._documents) + sum(c.held() for c in self._credits.values())


@dataclass(frozen=True)
class OrgRow:
    org_id: str
    name: str
    parent_id: str | None
    # None until the org says; the nearest explicit choice up the tree applies.
    board_published: bool | None


def apply_org_fact(current: OrgRow | None, fact: RecordedFact) -> OrgRow:
    """Fold one org fact into the org's row."""
    payload = fact.payload
    if fact.type == "org.registered":
        return OrgRow(str(payload["org_id"]), str(payload["name"]), payload["parent_id"], None)
    assert current is not None, "an org fact before the org's registration"
    return OrgRow(current.org_id, current.name, current.parent_id, bool(payload["published"]))
