"""Policy packs: credit rules as data (TOML), validated on load, with an id and a version.

Reading the packaged files is the only I/O here, and it reads the package's own data.
"""

from __future__ import annotations

import tomllib
from decimal import Decimal
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


class PolicyPack(_Strict):
    id: str
    version: str
    title: str
    unit: Literal["credits", "hours"]
    time_zone: str
    first_cycle_start: int = Field(ge=1949, le=2200)
    cycle_years: int = Field(ge=1, le=20)
    decisions: list[str] = []
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
        return self

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
