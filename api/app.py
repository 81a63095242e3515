"""The FastAPI application: routers, the error model and the body limit, given services."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI, Request

from .errors import BODY_ERRORS, ApiError, ErrorDetail, install_error_handlers
from .limits import BodyLimitMiddleware
from .routers import (
    audit,
    boards,
    certificates,
    compliance_pages,
    docs,
    events,
    health,
    home_pages,
    learners,
    metrics,
    orgs,
    pages,
)
from .services import Services
from .telemetry import RequestTelemetryMiddleware
from .xapi import documents as xapi_documents
from .xapi import statements as xapi_statements

DESCRIPTION = """\
StudyLedger: an event-sourced learning record system for cadre education and training.
Facts go in once (`POST /v1/events`); balances, ranking boards, audit trails and compliance
lists are projections of them. Authenticate with `Authorization: Bearer <api key>`
(`studyledger keys create --role R --org ORG`). Every error has the body
`{"error": {"code", "message", "details": [{"field", "message"}]}}`. Page cursors
(`next_cursor`) are opaque: pass them back as they are.
"""


async def refuse_nul_characters(request: Request) -> None:
    """No path or query parameter may hold U+0000: PostgreSQL text cannot store or compare
    one, so it would fail in the database; refused up front as invalid input, on both
    stores alike."""
    found = [f"path.{name}" for name, value in request.path_params.items()
             if "\x00" in str(value)]
    found += [f"query.{name}" for name, value in request.query_params.multi_items()
              if "\x00" in name + value]
    if found:
        raise ApiError(422, "invalid_request", f"{found[0]}: must not contain NUL (U+0000)",
                       [ErrorDetail(field=f, message="must not contain NUL (U+0000)")
                        for f in found])


def create_app(services: Services) -> FastAPI:
    # /docs is served by routers.docs with local files (FastAPI's loads them from a CDN);
    # /redoc is off, as its script exists only on a CDN.
    app = FastAPI(title="StudyLedger", version="1", description=DESCRIPTION,
                  dependencies=[Depends(refuse_nul_characters)], docs_url=None,
                  redoc_url=None)
    app.state.services = services
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=services.max_body_bytes)
    # Outermost of ours: it times the body limit's refusals too.
    app.add_middleware(RequestTelemetryMiddleware, telemetry=services.telemetry,
                       audit=services.read_audit)
    for module in (events, learners, certificates, boards, orgs, health, pages,
                   compliance_pages, home_pages, metrics, audit, docs, xapi_statements,
                   xapi_documents):
        app.include_router(module.router)
    app.state.html_errors = pages.render_error
    _document_body_errors(app)
    return app


def _document_body_errors(app: FastAPI) -> None:
    """Any operation that reads a body can meet one it cannot parse (400) or one over the
    limit (413): both are added to every such operation of the OpenAPI document."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        for item in schema["paths"].values():
            for operation in item.values():
                if isinstance(operation, dict) and "requestBody" in operation:
                    for status, description in BODY_ERRORS.items():
                        operation["responses"].setdefault(status, {
                            "description": description, "content": {"application/json": {
                                "schema": {"$ref": "#/components/schemas/ErrorBody"}}}})
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
