"""Ranking boards: public (masked) for opted-in orgs, full for auditor and admin keys."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from projections.ranking_board import BoardAnswer

from ..auth import READER_ROLES
from ..cursors import CursorParam
from ..errors import ERROR_RESPONSES, ErrorBody
from ..schemas import BOARD_EXAMPLE, RankAnswer, example_response
from ..security import (
    MaybePrincipal,
    Reader,
    check_board_public,
    check_learner_readable,
    check_org_readable,
)
from ..services import ServicesDep

router = APIRouter(prefix="/v1/boards", tags=["boards"])

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No such org or learner"}, **ERROR_RESPONSES}
Org = Annotated[str | None, Query(description="org subtree (default: the key's org; "
                                  "required without a key)", examples=["500104"])]
Policy = Annotated[str, Path(description="policy pack id", examples=["dadukou-double-100"])]
Cycle = Annotated[str, Path(description="a whole cycle", examples=["2021-2025"])]
LearnerId = Annotated[str, Path(examples=["L000042"])]
# Cursors are sealed: the example shows the shape, never a readable position.
EXAMPLE = BOARD_EXAMPLE | {"next_cursor": "AZpSzwXjcZoeLbG1Y9MGaQF4ld0zRQtDFfdU21NQsHiRmObU"}


@router.get("/{policy}/{period}", response_model=BoardAnswer,
            responses=NOT_FOUND | example_response(EXAMPLE),
            summary="A page of a ranking board")
def board(services: ServicesDep, principal: MaybePrincipal, policy: Policy, period: Cycle,
          org: Org = None, limit: Annotated[int, Query(ge=1, le=500)] = 50,
          cursor: CursorParam = None) -> BoardAnswer:
    """Without an auditor or admin key, only boards of orgs that opted in, with masked names
    and no learner ids."""
    full = principal is not None and principal.role in READER_ROLES
    if full:
        assert principal is not None
        org = org or principal.org_id
        check_org_readable(services, principal, org)
    else:
        org = check_board_public(services, org)
    return services.views.board(policy, period, org=org, limit=limit, cursor=cursor,
                                anonymous=not full)


@router.get("/{policy}/{period}/learners/{learner_id}", response_model=RankAnswer,
            responses=NOT_FOUND, summary="One learner's rank and score")
def rank(services: ServicesDep, reader: Reader, policy: Policy, period: Cycle,
         learner_id: LearnerId, org: Org = None) -> RankAnswer:
    check_learner_readable(services, reader, learner_id)
    org = org or reader.org_id
    check_org_readable(services, reader, org)
    return services.views.rank(policy, period, learner_id, org)
