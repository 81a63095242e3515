"""Policy packs: credit rules as data (TOML), validated on load, with an id and a version.

Reading the packaged files is the only I/O here, and it reads the package's own data.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Context, Decimal
from functools import cache
from importlib import resources
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from domain.errors import PolicyError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Category(_Strict):
    # Positive lines count up to the cap per period; the rest is shown as excess.
    cap: Decimal | None = None


class PerHourRule(_Strict):
    category: str
    credit_per_hour: Decimal


class TrainingRule(PerHourRule):
    # A class is withdrawn (earns nothing) when leave_hours > hours / leave_limit_divisor.
    leave_limit_divisor: int = Field(gt=0)


class CourseRule(_Strict):
    category: str
    progress_threshold: Decimal = Field(gt=0, le=1)


class FixedRule(_Strict):
    category: str
    credit: Decimal


class TableRule(_Strict):
    category: str
    credits: dict[str, Decimal]


class Rules(_Strict):
    training_attended: TrainingRule | None = None
    course_completed: CourseRule | None = None
    exam_passed: FixedRule | None = None
    assignment_accepted: dict[str, FixedRule] = {}
    declaration_approved: PerHourRule | None = None
    achievement_recorded: TableRule | None = None
    award_granted: TableRule | None = None
    # Deductions: the table holds positive numbers that are subtracted.
    penalty_recorded: TableRule | None = None


class Requirement(_Strict):
    name: str
    measure: str  # a category or a total
    minimum: Decimal
    per: Literal["cycle", "year"]
    ranks: list[str] = []  # empty: applies to every rank

    def applies_to(self, rank: str | None) -> bool:
        return not self.ranks or rank in self.ranks


class AnnualCheck(_Strict):
    # Year k of a cycle requires k * per_year of each measure, cumulative from the cycle start.
    per_year: dict[str, Decimal]
    promotion_hold: bool = False


class Board(_Strict):
    score: list[str]  # totals summed into the ranking score


# Wide enough that no product or quotient of an envelope quantity (at most 28 significant
# digits, 40 decimal places) and a pack constant is rounded before the pack's own rounding.
EXACT = Context(prec=200)


# The quantum of each number of places (1, 0.1, 0.01, ...), made once.
_QUANTA = [Decimal(1).scaleb(-places) for places in range(13)]


def round_half_up(value: Decimal, places: int) -> Decimal:
    quantum = _QUANTA[places] if 0 <= places < len(_QUANTA) else Decimal(1).scaleb(-places)
    return value.quantize(quantum, rounding=ROUND_HALF_UP, context=EXACT)


def decimal_places(value: Decimal) -> int:
    exponent = value.normalize(EXACT).as_tuple().exponent
    assert isinstance(exponent, int)
    return max(0, -exponent)


class Rounding(_Strict):
    # Every credit line is rounded half-up to this many places when it is made, so sums,
    # caps and scores are exact. Answers and the read views hold hundredths: at most 2.
    line_places: int = Field(ge=0, le=2)
    # Platform quantities are compared with thresholds (leave vs hours / divisor, progress
    # vs the completion threshold, score vs pass_score) after rounding both sides half-up
    # to this many places, so float noise in what a platform computed cannot flip a result.
    compare_places: int = Field(ge=0, le=12)

    def line(self, value: Decimal) -> Decimal:
        return round_half_up(value, self.line_places)

    def compared(self, value: Decimal) -> Decimal:
        return round_half_up(value, self.compare_places)


class PolicyPack(_Strict):
    id: str
    version: str
    title: str
    unit: Literal["credits", "hours"]
    time_zone: str
    first_cycle_start: int = Field(ge=1949, le=2200)
    cycle_years: int = Field(ge=1, le=20)
    decisions: list[str] = []
    rounding: Rounding
    # Requirements of a cycle that began before the learner's registration year are scaled
    # to the years since registration; false asks the whole cycle of everyone.
    prorate_from_registration: bool = True
    categories: dict[str, Category]
    totals: dict[str, list[str]]
    rules: Rules
    requirements: list[Requirement] = []
    annual_check: AnnualCheck | None = None
    board: Board

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _names_resolve(self) -> PolicyPack:
        measures = set(self.categories) | set(self.totals)
        for total, members in self.totals.items():
            if unknown := set(members) - set(self.categories):
                raise ValueError(f"total {total!r} names unknown categories {sorted(unknown)}")
        for rule_category in self._rule_categories():
            if rule_category not in self.categories:
                raise ValueError(f"a rule credits unknown category {rule_category!r}")
        for requirement in self.requirements:
            if requirement.measure not in measures:
                raise ValueError(f"requirement {requirement.name!r} measures an unknown name")
        if self.annual_check and (unknown := set(self.annual_check.per_year) - measures):
            raise ValueError(f"annual_check names unknown measures {sorted(unknown)}")
        if unknown := set(self.board.score) - set(self.totals):
            raise ValueError(f"board score names unknown totals {sorted(unknown)}")
        self._constants_fit_the_rounding()
        return self

    def _constants_fit_the_rounding(self) -> None:
        """Caps, requirements and fixed credits are used as written: each must already be a
        multiple of the line unit, or sums and shortfalls would leave it."""
        places = self.rounding.line_places
        for name, value in self._line_constants():
            if decimal_places(value) > places:
                raise ValueError(f"{name} = {value} has more than the {places} decimal "
                                 "places of rounding.line_places")
        course = self.rules.course_completed
        if course and decimal_places(course.progress_threshold) > self.rounding.compare_places:
            raise ValueError("rules.course_completed.progress_threshold has more decimal "
                             "places than rounding.compare_places")

    def _line_constants(self) -> Iterable[tuple[str, Decimal]]:
        for name, category in self.categories.items():
            if category.cap is not None:
                yield f"categories.{name}.cap", category.cap
        for requirement in self.requirements:
            yield f"requirements.{requirement.name}.minimum", requirement.minimum
        if self.annual_check:
            for name, value in self.annual_check.per_year.items():
                yield f"annual_check.per_year.{name}", value
        rules = self.rules
        fixed = {"exam_passed": rules.exam_passed} | {
            f"assignment_accepted.{kind}": rule for kind, rule in rules.assignment_accepted.items()}
        for name, rule in fixed.items():
            if rule is not None:
                yield f"rules.{name}.credit", rule.credit
        tables = {"achievement_recorded": rules.achievement_recorded,
                  "award_granted": rules.award_granted, "penalty_recorded": rules.penalty_recorded}
        for name, table in tables.items():
            for key, value in (table.credits.items() if table else ()):
                yield f"rules.{name}.credits.{key}", value

    def _rule_categories(self) -> list[str]:
        rules = self.rules
        single = [
            rules.training_attended, rules.course_completed, rules.exam_passed,
            rules.declaration_approved, rules.achievement_recorded, rules.award_granted,
            rules.penalty_recorded,
        ]
        found = [rule.category for rule in single if rule is not None]
        return found + [rule.category for rule in rules.assignment_accepted.values()]

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def cycle_of(self, year: int) -> tuple[int, int]:
        """The (first, last) year of the cycle that holds `year`."""
        offset = (year - self.first_cycle_start) // self.cycle_years
        first = self.first_cycle_start + offset * self.cycle_years
        return first, first + self.cycle_years - 1


SHIPPED_PACKS = ("dadukou-double-100", "cadre-regs-2023")
DEFAULT_PACK = "dadukou-double-100"


def parse_pack(text: str, origin: str) -> PolicyPack:
    """Validate a pack's TOML text; errors name the origin and the offending key."""
    try:
        return PolicyPack.model_validate(tomllib.loads(text))
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"policy pack {origin}: not valid TOML: {exc}") from exc
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(pack)'}: {err['msg']}"
            for err in exc.errors()
        )
        raise PolicyError(f"policy pack {origin}: {problems}") from exc


@cache
def load_pack(pack_id: str) -> PolicyPack:
    """A shipped pack by id."""
    if pack_id not in SHIPPED_PACKS:
        raise PolicyError(
            f"unknown policy {pack_id!r}; known: {', '.join(SHIPPED_PACKS)}", field="policy"
        )
    text = resources.files("domain.policy").joinpath(f"packs/{pack_id}.toml").read_text("utf-8")
    pack = parse_pack(text, f"{pack_id}.toml")
    if pack.id != pack_id:
        raise PolicyError(f"policy pack file {pack_id}.toml declares id {pack.id!r}")
    return pack


def all_categories() -> frozenset[str]:
    """Every category some shipped pack counts: what a credits.adjusted fact may name."""
    return frozenset(c for pack_id in SHIPPED_PACKS for c in load_pack(pack_id).categories)
