"""What the read tables hold for one learner, as a pure function of the learner's facts.

Recomputing a learner's rows from all of its facts (rather than patching them event by
event) keeps voids, once-only rules and caps exactly equal to the credit calculus, and makes
every rebuild give the same rows whatever batches the events arrived in.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from domain.credits.balance import Ledger, Period, answer_document, registration_of
from domain.credits.lines import RecordedFact, active_facts, credit_lines
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


def score_cents(score: Decimal) -> int:
    return int((score * 100).to_integral_value())


def learner_row(facts: Sequence[RecordedFact], pack: PolicyPack) -> LearnerRow:
    registration = facts[0]
    assert registration.type == "learner.registered"
    row = LearnerRow(
        learner_id=str(registration.fact["learner_id"]),
        name=str(registration.payload["name"]),
        org_id=str(registration.payload["org_id"]),
        rank=str(registration.payload["rank"]),
        registered_year=registration.occurred_at.astimezone(pack.zone).year,
    )
    org_id = current_org_id(facts)
    if org_id != row.org_id:
        row = LearnerRow(row.learner_id, row.name, org_id, row.rank, row.registered_year)
    return row


def current_org_id(facts: Sequence[RecordedFact]) -> str:
    """The unit of the latest transfer by occurred_at (ties: the one recorded later), else
    the unit of registration: platforms may send transfers out of order. A transfer dated
    before the registration does not move the learner, as in the archive (LearnerArchive)."""
    registration = next(f for f in facts if f.type == "learner.registered")
    moves = [(registration.occurred_at, -1, registration)]
    moves += [(f.occurred_at, i, f) for i, f in enumerate(active_facts(facts))
              if f.type == "learner.transferred"]
    return str(max(moves, key=lambda t: (t[0], t[1]))[2].payload["org_id"])


def periods_to_show(pack: PolicyPack, years: Iterable[int]) -> list[Period]:
    """Each cycle holding any of `years`, and every year of those cycles."""
    cycles = sorted({pack.cycle_of(year) for year in years})
    periods: list[Period] = []
    for first, last in cycles:
        periods.append(Period(first, last))
        periods.extend(Period(year, year) for year in range(first, last + 1))
    return periods


def learner_views(
    facts: Sequence[RecordedFact], packs: Sequence[PolicyPack] | None = None
) -> LearnerViews:
    """The directory row and every balance row (each pack, cycle and year) of one learner."""
    packs = packs or [load_pack(pack_id) for pack_id in SHIPPED_PACKS]
    registration = registration_of(facts)
    learner_id = registration.learner_id
    row = learner_row(facts, packs[0])
    balances: list[BalanceRow] = []
    required_sessions = {f.event_id for f in facts
                         if f.type == "study_session.recorded" and f.payload["required"]}
    for pack in packs:
        ledger = Ledger(pack, credit_lines(pack, facts))
        years = {line.year for line in ledger.lines} | {registration.year(pack)}
        required_lines = [ln for ln in ledger.lines if ln.event_id in required_sessions]
        for period in periods_to_show(pack, years):
            status, body = answer_document(ledger, registration, period)
            balances.append(BalanceRow(
                learner_id=learner_id, policy=pack.id, period=str(period),
                is_cycle=period.is_cycle, status=status,
                score_cents=score_cents(ledger.board_score(period.years)),
                required_hours_cents=score_cents(sum(
                    (ln.amount for ln in required_lines if ln.year in period.years),
                    Decimal(0))),
                body=body.decode(),
            ))
    return LearnerViews(row, balances)


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
