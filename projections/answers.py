"""The answers of the read side that are not a balance, a board or a trail: a learner's rank,
an org's compliance list and its statistics. Built by infra.views, returned by the HTTP API
and printed by the CLI's --json alike."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from domain.credits.balance import PolicyRef, RequirementResult


def example_config(**values: Any) -> ConfigDict:
    """An example for the OpenAPI document."""
    return ConfigDict(json_schema_extra={"examples": [values]})


_example = example_config


class RankAnswer(BaseModel):
    model_config = _example(policy={"id": "dadukou-double-100", "version": "1"},
                            period="2021-2025", org="500104", learner_id="L000123", rank=12,
                            score="143.50", of=500)

    policy: PolicyRef
    period: str
    org: str | None
    learner_id: str
    rank: int
    score: str
    of: int


class ShortLearner(BaseModel):
    learner_id: str
    name: str
    org_id: str
    shortfalls: list[RequirementResult]
    promotion: dict[str, Any] | None


class ComplianceAnswer(BaseModel):
    model_config = _example(
        org="500104-04", policy={"id": "dadukou-double-100", "version": "1"}, period="2023",
        learners_in_scope=42, short=[{
            "learner_id": "L000123", "name": "张三明", "org_id": "500104-04",
            "shortfalls": [{"name": "basic", "required": "60.00", "actual": "41.00",
                            "shortfall": "19.00", "met": False, "year": 2023}],
            "promotion": {"year": 2024, "status": "make_up_required",
                          "shortfall": {"basic": "19.00"}}}])

    org: str
    policy: PolicyRef
    period: str
    learners_in_scope: int
    short: list[ShortLearner]


class OrgStatistics(BaseModel):
    model_config = _example(org="500104", policy={"id": "dadukou-double-100", "version": "1"},
                            year=2024, learners=500, share_with_credit="0.9340",
                            mean_score="31.42", median_score="29.00",
                            required_course_hours="1234.50")

    org: str
    policy: PolicyRef
    year: int
    learners: int
    share_with_credit: str
    mean_score: str
    median_score: str
    required_course_hours: str
