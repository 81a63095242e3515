"""POST /v1/events and /v1/events/batch: facts in, with duplicate and conflict semantics."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from domain.application import RecordResult
from domain.errors import OutOfScopeError, PrerequisiteMissingError
from domain.facts import IncomingFact, describe_problems, fact_problems, parse_fact

from ..auth import Principal, may_post
from ..errors import (
    ERROR_RESPONSES,
    ApiError,
    ErrorBody,
    ErrorDetail,
    ErrorInfo,
    domain_error_info,
    error_response,
    status_of,
)
from ..schemas import FACT_EXAMPLE, BatchItem, BatchRecorded, EventRecorded, ItemStatus
from ..security import Caller
from ..services import Services, ServicesDep

router = APIRouter(prefix="/v1/events", tags=["events"])

WaitParam = Annotated[bool, Query(
    description="Answer only after the read views have processed this write "
    "(read-your-writes); `projected` says whether they did within the server's timeout.")]


def _parse(data: Any) -> IncomingFact | ErrorInfo:
    try:
        return parse_fact(data)
    except ValidationError as exc:
        problems = fact_problems(exc)
        return ErrorInfo(code="invalid_fact",
                         message=describe_problems(problems, limit=5),
                         details=[ErrorDetail(field=path, message=msg) for path, msg in problems])


async def _wait_for_views(services: Services, position: int | None) -> bool:
    """Poll the views' position until it reaches `position`; False on timeout."""
    if position is None:
        return True
    deadline = time.monotonic() + services.wait_timeout_seconds
    while services.views.position() < position:
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


async def _record(services: Services, principal: Principal,
                  facts: list[IncomingFact]) -> list[RecordResult]:
    # The write blocks on the database: keep it off the event loop.
    return await run_in_threadpool(
        services.ledger.record_facts, facts, now=services.clock(), channel="http",
        within_org=principal.org_id)


def outcome_of(result: RecordResult) -> str:
    """The metrics' name for a write's result: stored, duplicate, parked or rejected."""
    return result.status if result.status in ("stored", "duplicate", "parked") else "rejected"


def _refuse_non_writers(principal: Principal) -> None:
    if principal.role == "auditor":
        raise ApiError(403, "forbidden", "an auditor key reads; it may not post facts")


@router.post(
    "", status_code=201, response_model=EventRecorded,
    summary="Record one fact",
    responses={200: {"model": EventRecorded, "description": "Already recorded (duplicate)"},
               202: {"model": EventRecorded,
                     "description": "Parked: a prerequisite (learner, org, submission, void "
                     "target) is not recorded yet; kept and recorded when it arrives"},
               409: {"model": ErrorBody, "description": "The key was used for other content"},
               **ERROR_RESPONSES},
)
async def post_event(
    services: ServicesDep, principal: Caller,
    fact: Annotated[dict[str, Any], Body(examples=[FACT_EXAMPLE])],
    wait: WaitParam = False,
) -> Any:
    """201 when stored, 200 with `duplicate: true` for a resend of the same content."""
    _refuse_non_writers(principal)
    parsed = _parse(fact)
    if isinstance(parsed, ErrorInfo):
        services.telemetry.facts_recorded("http", ["rejected"])
        return error_response(422, parsed)
    refusal = may_post(principal, parsed)
    if refusal is not None:
        services.telemetry.facts_recorded("http", ["rejected"])
        raise refusal
    (result,) = await _record(services, principal, [parsed])
    services.telemetry.facts_recorded("http", [outcome_of(result)])
    if isinstance(result.error, PrerequisiteMissingError):
        body = EventRecorded(event_id=result.event_id, position=None, duplicate=False,
                             parked=True, waiting_for=result.error.waits_for,
                             error=domain_error_info(result.error))
        return JSONResponse(body.model_dump(mode="json"), status_code=202)
    if result.error is not None:
        return error_response(status_of(result.error, reading=False),
                              domain_error_info(result.error))
    projected = await _wait_for_views(services, result.position) if wait else None
    body = EventRecorded(event_id=result.event_id, position=result.position,
                         duplicate=result.status == "duplicate", projected=projected)
    return JSONResponse(body.model_dump(mode="json"),
                        status_code=200 if body.duplicate else 201)


def _item(index: int, result: RecordResult) -> BatchItem:
    status: ItemStatus = result.status
    if isinstance(result.error, OutOfScopeError):
        status = "forbidden"
    waiting_for = (result.error.waits_for
                   if isinstance(result.error, PrerequisiteMissingError) else None)
    return BatchItem(index=index, status=status, event_id=result.event_id,
                     position=result.position, waiting_for=waiting_for,
                     error=domain_error_info(result.error) if result.error else None)


@router.post(
    "/batch", response_model=BatchRecorded, summary="Record up to 1000 facts",
    responses={413: {"model": ErrorBody, "description": "The body is over the size limit"},
               **ERROR_RESPONSES},
)
async def post_batch(
    services: ServicesDep, principal: Caller,
    facts: Annotated[list[dict[str, Any]], Body(examples=[[FACT_EXAMPLE]])],
    wait: WaitParam = False,
) -> BatchRecorded:
    """One result per item, in order: valid items are stored in one transaction, invalid or
    forbidden ones are reported with their reason, and items whose prerequisite is not
    recorded yet are parked (the order of items inside a batch does not matter); none
    vanish."""
    _refuse_non_writers(principal)
    if len(facts) > services.max_batch_facts:
        raise ApiError(422, "batch_too_large",
                       f"a batch holds at most {services.max_batch_facts} facts, "
                       f"this one {len(facts)}")
    items: list[BatchItem | None] = [None] * len(facts)
    to_record: list[tuple[int, IncomingFact]] = []
    for index, data in enumerate(facts):
        parsed = _parse(data)
        if isinstance(parsed, ErrorInfo):
            items[index] = BatchItem(index=index, status="invalid", error=parsed)
            continue
        refusal = may_post(principal, parsed)
        if refusal is not None:
            items[index] = BatchItem(
                index=index, status="forbidden", event_id=parsed.event_id,
                error=ErrorInfo(code=refusal.code, message=refusal.message))
            continue
        to_record.append((index, parsed))
    if to_record:
        results = await _record(services, principal, [fact for _, fact in to_record])
        for (index, _), result in zip(to_record, results, strict=True):
            items[index] = _item(index, result)
    done = [item for item in items if item is not None]
    services.telemetry.facts_recorded("http", [
        i.status if i.status in ("stored", "duplicate", "parked") else "rejected" for i in done])
    positions = [item.position for item in done if item.position is not None]
    projected = await _wait_for_views(services, max(positions, default=None)) if wait else None
    return BatchRecorded(
        stored=sum(1 for i in done if i.status == "stored"),
        duplicate=sum(1 for i in done if i.status == "duplicate"),
        failed=sum(1 for i in done if i.status not in ("stored", "duplicate", "parked")),
        parked=sum(1 for i in done if i.status == "parked"),
        projected=projected, results=done)
