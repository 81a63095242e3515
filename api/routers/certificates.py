"""Study-hour certificates: issued by auditor and admin keys, verified by anyone."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict

from domain.credits.balance import PolicyRef
from projections.certificate import CertificateTotals

from .. import certificates
from ..errors import ERROR_RESPONSES, ErrorBody
from ..security import Reader, check_learner_readable
from ..services import ServicesDep

router = APIRouter(tags=["certificates"])


class CertificateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"period": "2024"}]})
    period: str  # a year (2024) or a cycle (2021-2025) that has started


TOTALS: dict[str, Any] = {"centralized_hours": "40.00", "online_hours": "9.00",
          "required_course_hours": "6.00", "total_hours": "49.00"}


class CertificateIssued(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "code": "K7QX-2M4D-9HRT-Z3WB",
        "verify_url": "https://xuexi.example.gov.cn/certificates/verify?code=K7QX-2M4D-9HRT-Z3WB",
        "learner_id": "L000042", "name": "张三明", "period": "2024",
        "policy": {"id": "cadre-regs-2023", "version": "1"}, "totals": TOTALS,
        "issued_at": "2026-11-22T02:00:00Z", "issued_by": "k3f9a2", "issuer_org_id": "500104"}]})
    code: str
    verify_url: str
    learner_id: str
    name: str
    period: str
    policy: PolicyRef
    totals: CertificateTotals
    issued_at: datetime
    issued_by: str  # the issuing key's id
    issuer_org_id: str


class CertificateCheck(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "status": "changed", "code": "K7QX-2M4D-9HRT-Z3WB", "period": "2024",
        "policy": {"id": "cadre-regs-2023", "version": "1"},
        "issued_at": "2026-11-22T02:00:00Z", "issuer_org_id": "500104",
        "totals_issued": TOTALS, "totals_now": TOTALS | {"centralized_hours": "0.00",
                                                         "total_hours": "9.00"}}]})
    status: Literal["valid", "changed", "unknown"]
    code: str
    # The rest only for a code that was issued (never a name or id for an unknown one).
    period: str | None = None
    policy: PolicyRef | None = None
    issued_at: datetime | None = None
    issuer_org_id: str | None = None
    totals_issued: CertificateTotals | None = None
    totals_now: CertificateTotals | None = None


@router.post("/v1/learners/{learner_id}/certificates", status_code=201,
             response_model=CertificateIssued,
             responses={404: {"model": ErrorBody, "description": "No such learner"},
                        **ERROR_RESPONSES},
             summary="Issue a study-hour certificate (recorded, with a random code)")
def issue_certificate(services: ServicesDep, reader: Reader,
                      learner_id: Annotated[str, Path(examples=["L000042"])],
                      body: CertificateRequest) -> Any:
    check_learner_readable(services, reader, learner_id)
    cert, issued = certificates.issue(services, reader, learner_id, body.period)
    return CertificateIssued(
        code=certificates.display_code(issued.code),
        verify_url=certificates.verify_url(services, issued.code), learner_id=learner_id,
        name=cert.name, period=issued.period, policy=issued.policy, totals=issued.totals,
        issued_at=issued.issued_at, issued_by=issued.issued_by,
        issuer_org_id=issued.issuer_org_id)


@router.get("/v1/certificates/{code}", response_model=CertificateCheck,
            summary="Verify a certificate code (public)")
def check_certificate(services: ServicesDep, code: str) -> Any:
    found = certificates.verify(services, code)
    if found.issued is None:
        return CertificateCheck(status="unknown", code=code[:certificates.MAX_CODE_CHARS])
    issued = found.issued
    return CertificateCheck(
        status=found.status, code=certificates.display_code(issued.code), period=issued.period,
        policy=issued.policy, issued_at=issued.issued_at, issuer_org_id=issued.issuer_org_id,
        totals_issued=issued.totals, totals_now=found.now)
