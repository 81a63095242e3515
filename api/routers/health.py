"""Liveness with substance: the store answers and how far the projections lag."""

from __future__ import annotations

from fastapi import APIRouter

from ..schemas import Health
from ..services import ServicesDep

router = APIRouter(tags=["health"])

# Views further behind than this are reported as degraded (they still answer).
DEGRADED_LAG = 100_000


@router.get("/health", response_model=Health, summary="Store and projection status")
@router.get("/v1/health", response_model=Health, include_in_schema=False)
async def health(services: ServicesDep) -> Health:
    recorded = services.ledger.recorder.max_notification_id() or 0
    projected = services.views.position()
    lag = max(0, recorded - projected)
    return Health(status="ok" if lag < DEGRADED_LAG else "degraded",
                  store=services.store_name, recorded_position=recorded,
                  projected_position=projected, projection_lag=lag,
                  parked=services.ledger.parked_count())
