"""Facts -> credit lines under a policy pack. Pure: the same facts always give the same lines.

Facts are read in their canonical stored form (decimals as strings, exactly as sent, times
in UTC). Arithmetic is exact; the only rounding is the pack's: each line when it is made,
and both sides of a comparison of a platform quantity with a threshold.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import cached_property, lru_cache
from typing import Any
from uuid import UUID

from domain.policy.pack import EXACT, PolicyPack, TableRule, round_half_up


@dataclass(frozen=True)
class RecordedFact:
    """A fact as the archive holds it: its id, canonical envelope and when it was recorded."""

    event_id: UUID
    fact: dict[str, Any]
    recorded_at: datetime | None = None

    # Read many times per fact by the calculus (each pack, each rule): computed once. A
    # cached_property writes the instance's __dict__ directly, so the dataclass stays frozen
    # (and its equality and hash still cover the fields only).
    @cached_property
    def type(self) -> str:
        return str(self.fact["type"])

    @property
    def payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = self.fact["payload"]
        return payload

    @cached_property
    def occurred_at(self) -> datetime:
        return datetime.fromisoformat(self.fact["occurred_at"])


@dataclass(frozen=True, slots=True)  # many are held: the runner keeps learners' folds
class CreditLine:
    """One credit (or, when negative, a deduction) that a fact produced."""

    event_id: UUID
    category: str
    amount: Decimal
    year: int


def active_facts(facts: Iterable[RecordedFact]) -> list[RecordedFact]:
    """The facts that stand: voids and their targets removed, stream order kept."""
    facts = list(facts)
    voided = {UUID(f.payload["target_event_id"]) for f in facts if f.type == "record.voided"}
    if not voided:
        return facts
    return [f for f in facts if f.type != "record.voided" and f.event_id not in voided]


def credit_lines(pack: PolicyPack, facts: Sequence[RecordedFact]) -> list[CreditLine]:
    """Every credit line the standing facts earn under `pack`, in stream order."""
    fold = CreditFold(pack)
    for fact in active_facts(facts):
        fold.add(fact)
    return fold.lines()


# (category, year) -> [earned, deducted]: lines summed the way every count reads them.
YearlySums = dict[tuple[str, int], list[Decimal]]


def add_to_yearly(yearly: YearlySums, line: CreditLine) -> None:
    """Count a line into its category's year: earned when positive, else deducted."""
    sums = yearly.setdefault((line.category, line.year), [_ZERO, _ZERO])
    sums[0 if line.amount > 0 else 1] += line.amount


class CreditFold:
    """The credit lines of standing facts given one at a time in stream order.

    A fact earns its own lines when it arrives (what came before it in the stream decides
    them: a review counts only after its submission); completed courses and passed exams
    earn once per course or exam, from the first attempt by occurred_at, so those lines are
    chosen again each time they are asked for. A void changes which facts stand: whoever
    meets one folds the standing facts again from the start.
    """

    def __init__(self, pack: PolicyPack, *, keep_lines: bool = True) -> None:
        self._calculator = _LineCalculator(pack)
        # (index of the fact, its line), for lines(); without keep_lines only the sums are
        # kept (a learner's fold held between batches should not grow with its history).
        self._own: list[tuple[int, CreditLine]] | None = [] if keep_lines else None
        # The first standing attempt of each course or exam, by (occurred_at, attempt, index),
        # with the line it earns.
        self._firsts: dict[tuple[str, str],
                           tuple[tuple[datetime, int, int], list[tuple[int, CreditLine]]]] = {}
        self.added = 0  # standing facts folded so far
        self.changes = 0  # how many of them changed the lines (a cheap "anything new?")
        self.own_yearly: YearlySums = {}  # the facts' own lines (not the once-only ones)

    def add(self, fact: RecordedFact) -> None:
        """Fold one standing fact."""
        index = self.added
        self.added += 1
        own = self._calculator.lines_for(fact)
        if own:
            self.changes += 1
        for line in own:
            if self._own is not None:
                self._own.append((index, line))
            add_to_yearly(self.own_yearly, line)
        key = self._calculator.once_only_key(fact)
        if key is not None:
            rank = (fact.occurred_at, int(fact.payload.get("attempt", 0)), index)
            first = self._firsts.get(key)
            if first is None or rank < first[0]:
                earned = self._calculator.once_only_line(key[0], fact)
                self._firsts[key] = (rank, [(index, line) for line in earned])
                self.changes += 1

    def held(self) -> int:
        """How many once-only candidates the fold holds (it keeps one per course and exam)."""
        return len(self._firsts)

    def once_only_lines(self) -> list[tuple[int, CreditLine]]:
        """Course completions (first session past the threshold) and exam passes, each
        with the index of the fact that earned it."""
        return [pair for _, earned in self._firsts.values() for pair in earned]

    def lines(self) -> list[CreditLine]:
        """Every line so far, in stream order (a fact's own lines before its once-only)."""
        assert self._own is not None, "a CreditFold made without keep_lines has no lines"
        indexed = self._own + self.once_only_lines()
        indexed.sort(key=lambda pair: pair[0])  # stable: own lines were appended first
        return [line for _, line in indexed]


_ZERO = Decimal(0)


@lru_cache(maxsize=4096)
def _compared(text: str, places: int) -> Decimal:
    """A platform quantity as compared with a threshold (round_half_up of its exact value);
    sessions and exams repeat a few spellings ("1", "0.5", "60") many times."""
    return round_half_up(Decimal(text), places)


class _LineCalculator:
    def __init__(self, pack: PolicyPack) -> None:
        self.pack = pack
        self.rules = pack.rules
        self.rounding = pack.rounding
        self.zone = pack.zone
        self.submitted_kinds: dict[str, str] = {}
        self.submitted_declarations: set[str] = set()
        # What each fact type earns on its own. Completed courses and passed exams earn once
        # per course or exam (once_only_lines); registrations, transfers and voids earn
        # nothing (a void removes the voided fact's lines instead).
        self.earns: dict[str, Callable[[RecordedFact, dict[str, Any]], list[CreditLine]]] = {
            "training.attended": self._training_attended,
            "assignment.submitted": self._assignment_submitted,
            "assignment.reviewed": self._assignment_reviewed,
            "declaration.submitted": self._declaration_submitted,
            "declaration.reviewed": self._declaration_reviewed,
            "achievement.recorded": self._achievement_recorded,
            "award.granted": self._award_granted,
            "penalty.recorded": self._penalty_recorded,
            "credits.adjusted": self._credits_adjusted,
        }

    def year_of(self, fact: RecordedFact) -> int:
        return fact.occurred_at.astimezone(self.zone).year

    def line(self, fact: RecordedFact, category: str, amount: Decimal) -> list[CreditLine]:
        amount = self.rounding.line(amount)
        if amount == 0:
            return []
        return [CreditLine(fact.event_id, category, amount, self.year_of(fact))]

    def lines_for(self, fact: RecordedFact) -> list[CreditLine]:
        earn = self.earns.get(fact.type)
        return earn(fact, fact.payload) if earn else []

    def _training_attended(self, fact: RecordedFact, p: dict[str, Any]) -> list[CreditLine]:
        rule = self.rules.training_attended
        if rule is None:
            return []
        hours, leave = Decimal(p["hours"]), Decimal(p["leave_hours"])
        limit = EXACT.divide(hours, Decimal(rule.leave_limit_divisor))
        if self.rounding.compared(leave) > self.rounding.compared(limit):  # withdrawn
            return []
        return self.line(fact, rule.category, EXACT.multiply(hours, rule.credit_per_hour))

    def _assignment_submitted(self, fact: RecordedFact, p: dict[str, Any]) -> list[CreditLine]:
        self.submitted_kinds[p["assignment_id"]] = p["kind"]
        return []

    def _assignment_reviewed(self, fact: RecordedFact, p: dict[str, Any]) -> list[CreditLine]:
        kind = self.submitted_kinds.get(p["assignment_id"])
        rule = self.rules.assignment_accepted.get(kind) if kind else None
        if p["decision"] != "accepted" or rule is None:
            return []
        return self.line(fact, rule.category, rule.credit)

    def _declaration_submitted(self, fact: RecordedFact, p: dict[str, Any]) -> list[CreditLine]:
        self.submitted_declarations.add(p["declaration_id"])
        return []

    def _declaration_reviewed(self, fact: RecordedFact, p: dict[str, Any]) -> list[CreditLine]:
        rule = self.rules.declaration_approved
        standing = p["declaration_id"] in self.submitted_declarations
        if rule is None or p["decision"] != "approved" or not standing:
            return []
        credit = EXACT.multiply(Decimal(p["approved_hours"]), rule.credit_per_hour)
        return self.line(fact, rule.category, credit)

    def _achievement_recorded(self, fact: RecordedFact, p: dict[str, Any]) -> list[CreditLine]:
        return self._by_table(fact, self.rules.achievement_recorded, p["level"])

    def _award_granted(self, fact: RecordedFact, p: dict[str, Any]) -> list[CreditLine]:
        return self._by_table(fact, self.rules.award_granted, p["level"])

    def _by_table(self, fact: RecordedFact, rule: TableRule | None, key: str) -> list[CreditLine]:
        return self.line(fact, rule.category, rule.credits.get(key, Decimal(0))) if rule else []

    def _penalty_recorded(self, fact: RecordedFact, p: dict[str, Any]) -> list[CreditLine]:
        rule = self.rules.penalty_recorded
        if rule is None:
            return []
        return self.line(fact, rule.category, -rule.credits.get(p["severity"], Decimal(0)))

    def _credits_adjusted(self, fact: RecordedFact, p: dict[str, Any]) -> list[CreditLine]:
        if p["category"] not in self.pack.categories:
            return []
        return self.line(fact, p["category"], Decimal(p["amount"]))

    def once_only_line(self, kind: str, fact: RecordedFact) -> list[CreditLine]:
        """The line of a course completed or an exam passed, by its first such fact."""
        if kind == "course" and self.rules.course_completed:
            rule = self.rules.course_completed
            return self.line(fact, rule.category, Decimal(fact.payload["course_hours"]))
        if kind == "exam" and self.rules.exam_passed:
            exam_rule = self.rules.exam_passed
            return self.line(fact, exam_rule.category, exam_rule.credit)
        return []

    def once_only_key(self, fact: RecordedFact) -> tuple[str, str] | None:
        fact_type = fact.type
        if fact_type != "study_session.recorded" and fact_type != "exam.graded":
            return None
        p = fact.payload
        course_rule = self.rules.course_completed
        places = self.rounding.compare_places
        if fact_type == "study_session.recorded" and course_rule is not None:
            threshold = self.rounding.compared(course_rule.progress_threshold)
            reached = _compared(p["progress"], places) >= threshold
            return ("course", p["course_id"]) if reached else None
        if fact_type == "exam.graded" and self.rules.exam_passed is not None:
            passed = _compared(p["score"], places) >= _compared(p["pass_score"], places)
            return ("exam", p["exam_id"]) if passed else None
        return None
