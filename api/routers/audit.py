"""GET /v1/audit-log: who read whose record, for admin keys only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import AwareDatetime, BaseModel, ConfigDict

from ..errors import ERROR_RESPONSES, forbidden
from ..security import Caller
from ..services import ServicesDep

router = APIRouter(prefix="/v1/audit-log", tags=["audit"])


class AuditLogEntry(BaseModel):
    """One read: never the key itself, only its id."""

    at: AwareDatetime
    key_id: str
    role: str
    org_id: str
    learner_id: str
    route: str
    method: str
    status: int


class AuditLogAnswer(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"entries": [{
        "at": "2026-11-23T03:14:15Z", "key_id": "1a2b3c4d", "role": "auditor",
        "org_id": "500104", "learner_id": "L000042",
        "route": "/v1/learners/{learner_id}/balance", "method": "GET", "status": 200}]}]})

    entries: list[AuditLogEntry]


@router.get("", response_model=AuditLogAnswer, responses=ERROR_RESPONSES,
            summary="Reads of learners' records, newest first")
async def audit_log(
    services: ServicesDep, caller: Caller,
    learner: Annotated[str | None, Query(description="only reads of this learner")] = None,
    key: Annotated[str | None, Query(description="only reads by this key id")] = None,
    since: Annotated[AwareDatetime | None, Query(description="only reads at or after")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AuditLogAnswer:
    if caller.role != "admin":
        raise forbidden(f"a {caller.role} key may not read the audit log; use an admin key")
    rows = await run_in_threadpool(services.read_audit.entries, learner_id=learner,
                                   key_id=key, since=since, limit=limit)
    return AuditLogAnswer(entries=[
        AuditLogEntry(at=r.at, key_id=r.key_id, role=r.role, org_id=r.org_id,
                      learner_id=r.learner_id, route=r.route, method=r.method, status=r.status)
        for r in rows])
