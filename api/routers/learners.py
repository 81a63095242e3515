"""A learner's balance, audit trail and chain verification (auditor and admin keys)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import AwareDatetime

from domain.credits.balance import BalanceAnswer
from projections.audit_trail import TrailPage

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
def history(services: ServicesDep, reader: Reader, learner_id: LearnerId, as_of: AsOf = None,
            limit: Annotated[int, Query(ge=1, le=500)] = 100,
            cursor: CursorParam = None) -> TrailPage:
    check_learner_readable(services, reader, learner_id)
    return services.views.history(learner_id, as_of=as_of, limit=limit, cursor=cursor)


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
