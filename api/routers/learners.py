"""A learner's balance, audit trail and chain verification (auditor and admin keys)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import AwareDatetime

from domain.credits.balance import BalanceAnswer
from domain.errors import InvalidMomentError
from domain.policy.pack import load_pack
from projections.audit_trail import TrailPage, parse_moment

from ..cursors import CursorParam
from ..errors import ERROR_RESPONSES, ErrorBody
from ..schemas import (
    BALANCE_EXAMPLE,
    HISTORY_EXAMPLE,
    BrokenLinkInfo,
    VerifyAnswer,
    example_response,
)
from ..security import Reader, check_learner_readable
from ..services import ServicesDep

router = APIRouter(prefix="/v1/learners", tags=["learners"])

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No such learner"}, **ERROR_RESPONSES}
DEFAULT_POLICY = "dadukou-double-100"

Policy = Annotated[str, Query(description="policy pack id", examples=[DEFAULT_POLICY])]
Period = Annotated[str, Query(description="a cycle (2021-2025) or a year (2023)",
                              examples=["2021-2025"])]
AsOf = Annotated[AwareDatetime | None, Query(
    description="answer as the record stood at this time (ISO 8601 with offset)")]
# History takes a plain date too: auditors think in days, in the pack's time zone.
KnownAt = Annotated[str | None, Query(
    description="the record as it stood at this time, by recording time (ISO 8601 with "
    "offset, or a date: midnight in the policy's time zone)",
    examples=["2025-01-01T00:00:00+08:00", "2025-01-01"])]
HappenedBy = Annotated[str | None, Query(
    description="only what had happened (occurred_at) by this time, as the record knows "
    "it now (ISO 8601 with offset, or a date: midnight in the policy's time zone)",
    examples=["2025-01-01"])]
HistoryAsOf = Annotated[str | None, Query(description="the same as known_at (older name)")]
LearnerId = Annotated[str, Path(examples=["L000042"])]
# Cursors are sealed: the example shows the shape, never a readable version.
HISTORY = HISTORY_EXAMPLE | {"next_cursor": "nncKc91ZAtmUOWE3o9li46SO"}


@router.get("/{learner_id}/balance", response_model=BalanceAnswer,
            responses=NOT_FOUND | example_response(BALANCE_EXAMPLE),
            summary="Credit balance for a cycle or a year")
async def balance(services: ServicesDep, reader: Reader, learner_id: LearnerId, period: Period,
                  policy: Policy = DEFAULT_POLICY, as_of: AsOf = None) -> Any:
    # The hot read: scope and answer in one query; the org tree's ancestry is cached.
    org_id, stored = services.views.learner_balance(learner_id, policy, period)
    check_learner_readable(services, reader, learner_id, org_id)
    if as_of is None and stored is not None:
        # the projected answer, sent as stored: no decoding and re-encoding
        return Response(stored, media_type="application/json")
    return await run_in_threadpool(services.ledger.balance, learner_id, policy, period, as_of)


@router.get("/{learner_id}/history", response_model=TrailPage,
            responses=NOT_FOUND | example_response(HISTORY),
            summary="The audit trail: each fact, its hash and credit effect")
def history(services: ServicesDep, reader: Reader, learner_id: LearnerId,
            known_at: KnownAt = None, happened_by: HappenedBy = None,
            as_of: HistoryAsOf = None, policy: Policy = DEFAULT_POLICY,
            limit: Annotated[int, Query(ge=1, le=500)] = 100,
            cursor: CursorParam = None) -> TrailPage:
    check_learner_readable(services, reader, learner_id)
    if known_at is not None and as_of is not None and known_at != as_of:
        raise InvalidMomentError("as_of is another name for known_at: send one of them",
                                 field="query.as_of")
    zone = load_pack(policy).time_zone
    known = known_at if known_at is not None else as_of
    return services.views.history(
        learner_id,
        known_at=parse_moment(known, zone, field="query.known_at") if known else None,
        happened_by=parse_moment(happened_by, zone, field="query.happened_by")
        if happened_by else None,
        limit=limit, cursor=cursor)


@router.get("/{learner_id}/verify", response_model=VerifyAnswer, responses=NOT_FOUND,
            summary="Recompute the learner's hash chain from the stored rows")
def verify(services: ServicesDep, reader: Reader, learner_id: LearnerId) -> VerifyAnswer:
    check_learner_readable(services, reader, learner_id)
    report = services.ledger.verify_learner(learner_id)
    broken = report.broken
    return VerifyAnswer(
        learner_id=learner_id, ok=broken is None, links_verified=report.links_checked,
        broken=BrokenLinkInfo(version=broken.version, event_id=broken.event_id,
                              reason=broken.reason) if broken else None)
