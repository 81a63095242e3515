"""Liveness with substance: the store answers and how far the projections lag."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from domain.errors import StoreUnavailableError

from ..errors import STORE_RETRY_AFTER_SECONDS
from ..schemas import Health, ProjectionStatus
from ..services import ServicesDep

router = APIRouter(tags=["health"])

# Views further behind than this are reported as degraded (they still answer).
DEGRADED_LAG = 100_000
DOWN: dict[int | str, dict[str, Any]] = {503: {
    "model": Health,
    "description": 'The store does not answer (status and store "down"; Retry-After says '
                   'when to ask again), or the projection runner is stalled (status "degraded", '
                   'projection.status "stalled")'}}


# A plain function: FastAPI runs it in its thread pool, so a store that is slow to answer
# holds up this request only, never the event loop.
@router.get("/health", response_model=Health, responses=DOWN,
            summary="Store and projection status")
@router.get("/v1/health", response_model=Health, include_in_schema=False)
def health(services: ServicesDep) -> Any:
    try:
        recorded = services.ledger.recorder.max_notification_id() or 0
        projected = services.views.position()
        parked = services.ledger.parked_count()
        state = services.views.runner_state()
    except StoreUnavailableError:
        down = Health(status="down", store="down", recorded_position=None,
                      projected_position=None, projection_lag=None, parked=None)
        return JSONResponse(down.model_dump(mode="json"), status_code=503,
                            headers={"Retry-After": str(STORE_RETRY_AFTER_SECONDS)})
    lag = max(0, recorded - projected)
    projection = ProjectionStatus(status="running", position=projected)
    if state is not None and state[0] == "stalled" and (state[1] or 0) > projected:
        # (A stall the views have since got past is over, whoever projected past it.)
        projection = ProjectionStatus(status="stalled", position=state[1] or 0, error=state[2])
    body = Health(status="ok" if lag < DEGRADED_LAG and projection.status == "running"
                  else "degraded", store=services.store_name, recorded_position=recorded,
                  projected_position=projected, projection_lag=lag, parked=parked,
                  projection=projection)
    if projection.status == "stalled":
        # A status code, not only a word in the body: monitors that watch codes must see it.
        return JSONResponse(body.model_dump(mode="json"), status_code=503)
    return body
