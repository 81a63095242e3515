"""Credit lines -> the balance answer (GET /v1/learners/{id}/balance) of a cycle or a year."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

import orjson
from pydantic import BaseModel, PlainSerializer

from domain.credits.lines import (
    CreditLine,
    RecordedFact,
    YearlySums,
    add_to_yearly,
    credit_lines,
)
from domain.errors import PolicyError
from domain.policy.pack import EXACT, PolicyPack
from domain.policy.pack import Requirement as PackRequirement

CENT = Decimal("0.01")
ZERO = Decimal(0)


def two_places(value: Decimal) -> str:
    return str(value.quantize(CENT))


Amount = Annotated[Decimal, PlainSerializer(two_places, return_type=str)]


@dataclass(frozen=True)
class Period:
    """A cycle (first..last spans the pack's cycle) or one calendar year."""

    first: int
    last: int

    @property
    def is_cycle(self) -> bool:
        return self.first != self.last

    @property
    def years(self) -> range:
        return range(self.first, self.last + 1)

    def __str__(self) -> str:
        return f"{self.first}-{self.last}" if self.is_cycle else str(self.first)


def parse_period(pack: PolicyPack, text: str) -> Period:
    """'2021-2025' (must be one of the pack's cycles) or '2023'."""
    if match := re.fullmatch(r"(\d{4})-(\d{4})", text.strip()):
        first, last = int(match[1]), int(match[2])
        if pack.cycle_of(first) != (first, last):
            cycle = pack.cycle_of(first)
            raise PolicyError(
                f"period {text!r} is not a cycle of {pack.id}; "
                f"cycles run {pack.cycle_years} years, e.g. {cycle[0]}-{cycle[1]}",
                field="period",
            )
        return Period(first, last)
    if re.fullmatch(r"\d{4}", text.strip()):
        return Period(int(text), int(text))
    raise PolicyError(f"period {text!r} is neither a year (2023) nor a cycle (2021-2025)",
                      field="period")


class CategoryBalance(BaseModel):
    raw: Amount
    counted: Amount
    excess: Amount


class RequirementResult(BaseModel):
    name: str
    required: Amount
    actual: Amount
    shortfall: Amount
    met: bool
    year: int | None = None  # set on per-year requirements and annual checks


class Promotion(BaseModel):
    year: int
    status: Literal["eligible", "make_up_required"]
    shortfall: dict[str, Amount]


class PolicyRef(BaseModel):
    id: str
    version: str


class Proration(BaseModel):
    """Requirements scaled to a career that began after its cycle did."""

    from_year: int  # the registration year, in the pack's time zone
    years_counted: int  # cycle years up to the period's end that are required of the learner
    cycle_years: int


class BalanceAnswer(BaseModel):
    learner_id: str
    policy: PolicyRef
    period: str
    categories: dict[str, CategoryBalance]
    totals: dict[str, Amount]
    requirements: list[RequirementResult]
    status: Literal["met", "short"]
    promotion: Promotion | None
    proration: Proration | None = None


Counts = tuple[Decimal, Decimal, Decimal]  # a CategoryBalance's raw, counted, excess


def count_values(amounts: Iterable[Decimal], cap: Decimal | None) -> Counts:
    """Positive lines count up to the cap; negative lines are subtracted after it."""
    earned = ZERO
    deducted = ZERO
    for amount in amounts:
        if amount > 0:
            earned += amount
        else:
            deducted -= amount
    kept = earned if cap is None else min(earned, cap)
    return earned - deducted, kept - deducted, earned - kept


def count_category(amounts: Iterable[Decimal], cap: Decimal | None) -> CategoryBalance:
    raw, counted, excess = count_values(amounts, cap)
    return CategoryBalance(raw=raw, counted=counted, excess=excess)


# Per year of a span, the sums of the year's lines by category (None: a year without any):
# (category, earned, deducted), sorted.
LedgerInputs = tuple[tuple[tuple[str, Decimal, Decimal], ...] | None, ...]


class Ledger:
    """A learner's credit lines under one pack, counted over any span of years.

    Answers for one learner ask for the same few spans many times (each year, each
    cumulative span of the annual check, the cycle), so lines are summed per category and
    year once, and each span's counts are kept.
    """

    def __init__(self, pack: PolicyPack, lines: Sequence[CreditLine]) -> None:
        yearly: YearlySums = {}
        for line in lines:
            add_to_yearly(yearly, line)
        self._start(pack, yearly)

    @classmethod
    def of_yearly(cls, pack: PolicyPack, yearly: YearlySums) -> Ledger:
        """From lines already summed per (category, year)."""
        ledger = cls.__new__(cls)
        ledger._start(pack, yearly)
        return ledger

    def _start(self, pack: PolicyPack, yearly: YearlySums) -> None:
        self.pack = pack
        self._yearly = yearly
        self._by_year: dict[int, tuple[tuple[str, Decimal, Decimal], ...]] | None = None
        self._categories: dict[range, dict[str, Counts]] = {}
        self._measures: dict[range, dict[str, Decimal]] = {}

    def inputs(self, years: range) -> LedgerInputs:
        """The sums every count over `years` is made of: two ledgers with equal inputs give
        equal counts, measures and requirements over those years."""
        if self._by_year is None:
            by_year: dict[int, list[tuple[str, Decimal, Decimal]]] = {}
            for (name, year), (earned, deducted) in self._yearly.items():
                by_year.setdefault(year, []).append((name, earned, deducted))
            self._by_year = {year: tuple(sorted(sums)) for year, sums in by_year.items()}
        return tuple(self._by_year.get(year) for year in years)

    def category_counts(self, years: range) -> dict[str, Counts]:
        """(raw, counted, excess) per category over the span, as plain Decimals."""
        counts = self._categories.get(years)
        if counts is None:
            # count_values over each year's [earned, deducted], without listing them.
            yearly = self._yearly
            counts = self._categories[years] = {}
            for name, category in self.pack.categories.items():
                earned = deducted = ZERO
                for year in years:
                    sums = yearly.get((name, year))
                    if sums is not None:
                        earned += sums[0]
                        deducted += sums[1]
                kept = earned if category.cap is None else min(earned, category.cap)
                counts[name] = (earned + deducted, kept + deducted, earned - kept)
        return counts

    def categories(self, years: range) -> dict[str, CategoryBalance]:
        return {name: CategoryBalance(raw=raw, counted=counted, excess=excess)
                for name, (raw, counted, excess) in self.category_counts(years).items()}

    def measures(self, years: range) -> dict[str, Decimal]:
        """Counted categories and totals over the span, by name."""
        if years not in self._measures:
            counted = {name: c[1] for name, c in self.category_counts(years).items()}
            totals = {
                name: sum((counted[m] for m in members), ZERO)
                for name, members in self.pack.totals.items()
            }
            self._measures[years] = counted | totals
        return self._measures[years]

    def totals(self, years: range) -> dict[str, Decimal]:
        measures = self.measures(years)
        return {name: measures[name] for name in self.pack.totals}

    def board_score(self, years: range) -> Decimal:
        measures = self.measures(years)
        return sum((measures[name] for name in self.pack.board.score), ZERO)


# A RequirementResult's name, required, actual, shortfall, met and year, as plain values.
Requirement = tuple[str, Decimal, Decimal, Decimal, bool, int | None]
# A Promotion's year, status and shortfall.
PromotionValues = tuple[int, str, dict[str, Decimal]]


def _result(name: str, required: Decimal, actual: Decimal, year: int | None) -> Requirement:
    shortfall = max(ZERO, required - actual)
    return name, required, actual, shortfall, shortfall == 0, year


def _result_model(values: Requirement) -> RequirementResult:
    name, required, actual, shortfall, met, year = values
    return RequirementResult(name=name, required=required, actual=actual,
                             shortfall=shortfall, met=met, year=year)


@dataclass(frozen=True)
class RequiredSpan:
    """Which years of a cycle are required of a learner.

    With the pack's prorate_from_registration, a learner registered in year R is asked
    nothing for the years of a cycle before R: cycle requirements are scaled to the years
    from R to the cycle's end, the annual check of year Y asks for per_year times the years
    from R to Y, and per-year requirements start in R. Without it, or for a learner
    registered before the cycle began, every year is required.
    """

    pack: PolicyPack
    from_year: int | None  # None: no proration

    @classmethod
    def of(cls, pack: PolicyPack, registered_year: int) -> RequiredSpan:
        return cls(pack, registered_year if pack.prorate_from_registration else None)

    def first_required(self, cycle_first: int) -> int:
        return cycle_first if self.from_year is None else max(cycle_first, self.from_year)

    def years_required(self, cycle_first: int, through: int) -> int:
        """Years of the cycle starting at cycle_first, up to `through`, that are required."""
        return max(0, through - self.first_required(cycle_first) + 1)

    def scaled(self, minimum: Decimal, cycle_first: int, cycle_last: int) -> Decimal:
        """A cycle requirement over the required years of the cycle, rounded like a line."""
        years = self.years_required(cycle_first, cycle_last)
        if years == self.pack.cycle_years:
            return minimum
        share = EXACT.divide(EXACT.multiply(minimum, Decimal(years)),
                             Decimal(self.pack.cycle_years))
        return self.pack.rounding.line(share)

    def proration(self, period: Period) -> Proration | None:
        cycle_first, cycle_last = self.pack.cycle_of(period.first)
        if self.from_year is None or self.from_year <= cycle_first:
            return None
        return Proration(from_year=self.from_year,
                         years_counted=self.years_required(cycle_first, period.last),
                         cycle_years=self.pack.cycle_years)


# (id of a pack, rank) -> (the pack, its requirements that apply to the rank). Keyed by
# identity (a pack holds dicts: it has no hash); the pack is kept to check the identity.
_APPLICABLE: dict[tuple[int, str | None], tuple[PolicyPack, list[PackRequirement]]] = {}


def _applicable(pack: PolicyPack, rank: str | None) -> list[PackRequirement]:
    """The pack's requirements that apply to a rank (asked for every answer built)."""
    key = (id(pack), rank)
    found = _APPLICABLE.get(key)
    if found is None or found[0] is not pack:
        if len(_APPLICABLE) > 1024:  # packs made on the fly (tests): stay small
            _APPLICABLE.clear()
        found = _APPLICABLE[key] = (pack, [r for r in pack.requirements if r.applies_to(rank)])
    return found[1]


def requirement_values(
    ledger: Ledger, period: Period, rank: str | None, span: RequiredSpan
) -> tuple[list[Requirement], PromotionValues | None]:
    pack = ledger.pack
    results: list[Requirement] = []
    applicable = _applicable(pack, rank)
    if period.is_cycle:
        cycle_measures = ledger.measures(period.years)
        for req in applicable:
            if req.per == "cycle":
                required = span.scaled(req.minimum, period.first, period.last)
                results.append(_result(req.name, required, cycle_measures[req.measure], None))
    promotion = None
    if not period.is_cycle and pack.annual_check is not None:
        annual = annual_check(ledger, period.first, span)
        results.extend(annual)
        if pack.annual_check.promotion_hold:
            promotion = (period.first + 1,
                         "eligible" if all(r[4] for r in annual) else "make_up_required",
                         {r[0]: r[3] for r in annual})
    first_required = span.first_required(pack.cycle_of(period.first)[0])
    for year in period.years:
        if year < first_required:
            continue  # before the learner's registration: nothing was required that year
        year_measures = ledger.measures(range(year, year + 1))
        for req in applicable:
            if req.per == "year":
                results.append(_result(req.name, req.minimum, year_measures[req.measure], year))
    return results, promotion


def requirement_results(
    ledger: Ledger, period: Period, rank: str | None, span: RequiredSpan
) -> tuple[list[RequirementResult], Promotion | None]:
    values, promotion = requirement_values(ledger, period, rank, span)
    return [_result_model(v) for v in values], (
        None if promotion is None else
        Promotion(year=promotion[0], status=promotion[1],  # type: ignore[arg-type]
                  shortfall=promotion[2]))


def annual_check(ledger: Ledger, year: int, span: RequiredSpan) -> list[Requirement]:
    """Year k of its cycle: cumulative counted measures >= k * per_year (caps applied), where
    k counts the required years of the cycle up to this one."""
    assert ledger.pack.annual_check is not None
    cycle_first, _ = ledger.pack.cycle_of(year)
    k = span.years_required(cycle_first, year)
    cumulative = ledger.measures(range(cycle_first, year + 1))
    return [
        _result(name, per_year * k, cumulative[name], year)
        for name, per_year in ledger.pack.annual_check.per_year.items()
    ]


@dataclass(frozen=True)
class Registration:
    """What the balance needs of a learner's learner.registered fact."""

    learner_id: str
    rank: str | None
    occurred_at: datetime

    def year(self, pack: PolicyPack) -> int:
        return self.occurred_at.astimezone(pack.zone).year


def registration_of(facts: Iterable[RecordedFact]) -> Registration:
    for fact in facts:
        if fact.type == "learner.registered":
            return Registration(str(fact.fact["learner_id"]), fact.payload.get("rank"),
                                fact.occurred_at)
    raise PolicyError("the facts hold no learner.registered fact")


def learner_rank(facts: Iterable[RecordedFact]) -> tuple[str, str | None]:
    registration = registration_of(facts)
    return registration.learner_id, registration.rank


def compute_balance(
    pack: PolicyPack,
    facts: Sequence[RecordedFact],
    period: Period,
    as_of: datetime | None = None,
) -> BalanceAnswer:
    """The balance answer for one learner's facts; `as_of` keeps facts recorded by then."""
    if as_of is not None:
        facts = [f for f in facts if f.recorded_at is None or f.recorded_at <= as_of]
    registration = registration_of(facts)
    return answer_from_ledger(Ledger(pack, credit_lines(pack, facts)), registration, period)


def answer_document(
    ledger: Ledger, registration: Registration, period: Period
) -> tuple[str, bytes]:
    """answer_from_ledger's status and its model_dump_json() as UTF-8, made from plain values
    with orjson: the read views store one per learner, pack and period, and building the
    ~10 models of each answer was most of a replay."""
    span = RequiredSpan.of(ledger.pack, registration.year(ledger.pack))
    status, rest = answer_without_learner(ledger, registration.rank, span, period)
    return status, with_learner_id(registration.learner_id, rest)


def with_learner_id(learner_id: str, rest: bytes) -> bytes:
    """answer_without_learner's document with the learner's id put first, as the answer
    model has it: the bytes orjson makes of the whole document."""
    return b'{"learner_id":' + orjson.dumps(learner_id) + b"," + rest[1:]


def answer_without_learner(
    ledger: Ledger, rank: str | None, span: RequiredSpan, period: Period
) -> tuple[str, bytes]:
    """answer_document's status and document, but for the learner's id: the same for every
    learner of that rank and span whose ledger has the same inputs over the years the
    period reads (Ledger.inputs of its cycle's start through its end)."""
    pack = ledger.pack
    requirements, promotion = requirement_values(ledger, period, rank, span)
    years = period.years
    status = "met" if all(r[4] for r in requirements) else "short"
    proration = span.proration(period)
    document = {
        "policy": {"id": pack.id, "version": pack.version},
        "period": str(period),
        "categories": {
            name: {"raw": two_places(raw), "counted": two_places(counted),
                   "excess": two_places(excess)}
            for name, (raw, counted, excess) in ledger.category_counts(years).items()},
        "totals": {name: two_places(value) for name, value in ledger.totals(years).items()},
        "requirements": [
            {"name": name, "required": two_places(required), "actual": two_places(actual),
             "shortfall": two_places(shortfall), "met": met, "year": year}
            for name, required, actual, shortfall, met, year in requirements],
        "status": status,
        "promotion": None if promotion is None else {
            "year": promotion[0], "status": promotion[1],
            "shortfall": {name: two_places(value) for name, value in promotion[2].items()}},
        "proration": None if proration is None else {
            "from_year": proration.from_year, "years_counted": proration.years_counted,
            "cycle_years": proration.cycle_years},
    }
    return status, orjson.dumps(document)


def answer_from_ledger(
    ledger: Ledger, registration: Registration, period: Period
) -> BalanceAnswer:
    """The balance answer for one period of lines already computed (one pass per pack)."""
    pack = ledger.pack
    span = RequiredSpan.of(pack, registration.year(pack))
    requirements, promotion = requirement_results(ledger, period, registration.rank, span)
    return BalanceAnswer(
        learner_id=registration.learner_id,
        policy=PolicyRef(id=pack.id, version=pack.version),
        period=str(period),
        categories=ledger.categories(period.years),
        totals=ledger.totals(period.years),
        requirements=requirements,
        status="met" if all(r.met for r in requirements) else "short",
        promotion=promotion,
        proration=span.proration(period),
    )
