"""Per-org reports: compliance (who is short) and statistics (auditor and admin keys)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from ..errors import ERROR_RESPONSES, ErrorBody
from ..schemas import ComplianceAnswer, OrgStatistics
from ..security import Reader, check_org_readable
from ..services import ServicesDep
from .learners import DEFAULT_POLICY, Period, Policy

router = APIRouter(prefix="/v1/orgs", tags=["orgs"])

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No such org"}, **ERROR_RESPONSES}
OrgId = Annotated[str, Path(examples=["500104"])]


@router.get("/{org_id}/compliance", response_model=ComplianceAnswer, responses=NOT_FOUND,
            summary="Learners of the org subtree short of a requirement")
def compliance(services: ServicesDep, reader: Reader, org_id: OrgId, period: Period,
               policy: Policy = DEFAULT_POLICY) -> ComplianceAnswer:
    check_org_readable(services, reader, org_id)
    return services.views.compliance(org_id, policy, period)


@router.get("/{org_id}/statistics", response_model=OrgStatistics, responses=NOT_FOUND,
            summary="Learners, share with credit, mean and median score, required hours")
def statistics(services: ServicesDep, reader: Reader, org_id: OrgId,
               year: Annotated[int, Query(ge=1990, le=2100)],
               policy: Policy = DEFAULT_POLICY) -> OrgStatistics:
    check_org_readable(services, reader, org_id)
    return services.views.org_statistics(org_id, policy, year)
