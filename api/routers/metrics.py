"""GET /metrics: the Prometheus scrape (text format), for the monitoring system."""

from __future__ import annotations

from fastapi import APIRouter, Response

from ..services import ServicesDep

router = APIRouter(tags=["health"])


# A plain function: the scrape reads the store (log head, views' position, parked facts),
# so FastAPI runs it in its thread pool, off the event loop.
@router.get("/metrics", include_in_schema=False)
def metrics(services: ServicesDep) -> Response:
    body, content_type = services.telemetry.exposition()
    return Response(body, media_type=content_type)
