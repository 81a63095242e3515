"""What a serving process answers before its store has first answered.

`serve` opens its port at once, so a load balancer or a person sees a server that is
starting, not a refused connection: every request gets 503 with Retry-After, exactly as when
the store goes away later (the store_unavailable error; /health says status and store
"down"; a page gets the error page). The real app takes over once the store answers.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from domain.errors import StoreUnavailableError

from .errors import STORE_RETRY_AFTER_SECONDS, install_error_handlers
from .routers import pages
from .schemas import Health

ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def create_waiting_app() -> FastAPI:
    """503 to everything (the reason the store does not answer is logged once, apart)."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    install_error_handlers(app)
    app.state.html_errors = pages.render_error

    @app.get("/health")
    @app.get("/v1/health")
    def health() -> Any:
        down = Health(status="down", store="down", recorded_position=None,
                      projected_position=None, projection_lag=None, parked=None)
        return JSONResponse(down.model_dump(mode="json"), status_code=503,
                            headers={"Retry-After": str(STORE_RETRY_AFTER_SECONDS)})

    @app.api_route("/{path:path}", methods=ALL_METHODS)
    def anything_else(path: str) -> Any:
        raise StoreUnavailableError("the store has not answered since this server started")

    return app
