"""Response bodies of the HTTP API (the balance, board and audit-trail answers are the
domain's and projections' own models, shared with the CLI's --json)."""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel

from projections.answers import (
    ComplianceAnswer,
    OrgStatistics,
    RankAnswer,
    ShortLearner,
    example_config,
)

from .errors import ErrorInfo

__all__ = ["ComplianceAnswer", "OrgStatistics", "RankAnswer", "ShortLearner"]

FACT_EXAMPLE: dict[str, Any] = {
    "type": "training.attended", "source": "cela-online", "external_id": "class-2024-07-L000123",
    "learner_id": "L000123", "occurred_at": "2024-07-12T17:00:00+08:00",
    "actor": "platform:cela-online",
    "payload": {"program_id": "P-2024-07", "kind": "thematic", "hours": "40",
                "leave_hours": "0"},
}


_example = example_config


class EventRecorded(BaseModel):
    model_config = _example(event_id="0b6f3c0e-3f0a-5b8e-9c43-7a1d2e4f5a6b", position=46713,
                            duplicate=False, projected=None)

    event_id: UUID
    position: int | None
    duplicate: bool
    # With ?wait=true: whether the read views had caught up before the answer was sent.
    projected: bool | None = None
    # 202: the fact needs another one that is not recorded yet (its learner, org, parent
    # org, submission or void target). It is kept and recorded as soon as that arrives;
    # resending it is safe. `waiting_for` names what it waits for ("learner:L000123").
    parked: bool = False
    waiting_for: str | None = None
    error: ErrorInfo | None = None


ItemStatus = Literal["stored", "duplicate", "conflict", "rejected", "invalid", "forbidden",
                     "parked"]


class BatchItem(BaseModel):
    index: int
    status: ItemStatus
    event_id: UUID | None = None
    position: int | None = None
    error: ErrorInfo | None = None
    waiting_for: str | None = None  # set when status is "parked"


class BatchRecorded(BaseModel):
    model_config = _example(
        stored=1, duplicate=0, failed=1, projected=None, results=[
            {"index": 0, "status": "stored", "event_id": "0b6f3c0e-3f0a-5b8e-9c43-7a1d2e4f5a6b",
             "position": 46714, "error": None},
            {"index": 1, "status": "invalid", "event_id": None, "position": None,
             "error": {"code": "invalid_fact", "message": "payload.hours: Input should be "
                       "greater than or equal to 0", "details": [
                           {"field": "payload.hours",
                            "message": "Input should be greater than or equal to 0"}]}}])

    stored: int
    duplicate: int
    failed: int
    parked: int = 0  # kept until what they wait for arrives; not failed
    projected: bool | None = None
    results: list[BatchItem]


class BrokenLinkInfo(BaseModel):
    version: int
    event_id: UUID | None
    reason: str


class VerifyAnswer(BaseModel):
    model_config = _example(learner_id="L000123", ok=True, links_verified=87, broken=None)

    learner_id: str
    ok: bool
    links_verified: int
    broken: BrokenLinkInfo | None


class ProjectionStatus(BaseModel):
    # stalled: the fact at `position` cannot be projected; the runner retries it (backoff)
    # and the views stay just before it until it can. running: `position` is the last
    # position projected.
    status: Literal["running", "stalled"]
    position: int
    error: str | None = None


class Health(BaseModel):
    model_config = _example(status="ok", store="sqlite", recorded_position=46713,
                            projected_position=46713, projection_lag=0)

    # down (HTTP 503): the store does not answer, and the positions are unknown (null).
    status: Literal["ok", "degraded", "down"]
    # The store answering ("sqlite", "postgresql"), or "down".
    store: str
    recorded_position: int | None
    projected_position: int | None
    projection_lag: int | None
    # Facts waiting in the store for a prerequisite (learner, org, submission, void target).
    parked: int | None = 0
    # The projection runner; null while the store is down.
    projection: ProjectionStatus | None = None


def example_response(example: dict[str, Any]) -> dict[int | str, dict[str, Any]]:
    """An OpenAPI 200 example for answers whose models live in domain/ or projections/."""
    return {200: {"content": {"application/json": {"example": example}}}}


BALANCE_EXAMPLE: dict[str, Any] = {
    "learner_id": "L000123", "policy": {"id": "dadukou-double-100", "version": "1"},
    "period": "2021-2025",
    "categories": {"basic": {"raw": "52.50", "counted": "52.50", "excess": "0.00"},
                   "self_study": {"raw": "46.00", "counted": "40.00", "excess": "6.00"},
                   "theory": {"raw": "6.00", "counted": "6.00", "excess": "0.00"},
                   "performance": {"raw": "15.00", "counted": "15.00", "excess": "0.00"}},
    "totals": {"basic": "52.50", "comprehensive": "61.00"},
    "requirements": [
        {"name": "basic", "required": "100.00", "actual": "52.50", "shortfall": "47.50",
         "met": False, "year": None},
        {"name": "comprehensive", "required": "100.00", "actual": "61.00",
         "shortfall": "39.00", "met": False, "year": None}],
    "status": "short", "promotion": None,
}
BOARD_EXAMPLE: dict[str, Any] = {
    "policy": {"id": "dadukou-double-100", "version": "1"}, "period": "2021-2025",
    "org": "500104", "entries": [
        {"rank": 1, "learner_id": "L000123", "name": "张三明", "org_id": "500104-07",
         "score": "205.00"},
        {"rank": 2, "learner_id": "L000077", "name": "李四", "org_id": "500104-02",
         "score": "198.50"}],
    "next_cursor": "WzE5ODUwLCJMMDAwMDc3Il0",
}
HISTORY_EXAMPLE: dict[str, Any] = {
    "learner_id": "L000123", "as_of": None, "note": None, "next_cursor": "2",
    "asked": {"known_at": None, "happened_by": "2025-01-01T00:00:00+08:00"}, "entries": [{
        "version": 2, "event_id": "0b6f3c0e-3f0a-5b8e-9c43-7a1d2e4f5a6b",
        "recorded_at": "2024-07-12T09:00:03Z", "envelope": FACT_EXAMPLE | {
            "occurred_at": "2024-07-12T09:00:00Z"},
        "hash": "9f2c…", "prev_hash": "e04c…",
        "effects": [{"policy": "dadukou-double-100", "category": "basic", "amount": "10.00",
                     "year": 2024, "status": "counted"}],
        "voided_by": None}],
}
