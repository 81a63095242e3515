"""The FastAPI application: routers, the error model and the body limit, given services."""

from __future__ import annotations

from fastapi import FastAPI

from .errors import install_error_handlers
from .limits import BodyLimitMiddleware
from .routers import boards, events, health, learners, orgs, pages
from .services import Services

DESCRIPTION = """\
StudyLedger: an event-sourced learning record system for cadre education and training.
Facts go in once (`POST /v1/events`); balances, ranking boards, audit trails and compliance
lists are projections of them. Authenticate with `Authorization: Bearer <api key>`
(`studyledger keys create --role R --org ORG`). Every error has the body
`{"error": {"code", "message", "details": [{"field", "message"}]}}`.
"""


def create_app(services: Services) -> FastAPI:
    app = FastAPI(title="StudyLedger", version="1", description=DESCRIPTION)
    app.state.services = services
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=services.max_body_bytes)
    for module in (events, learners, boards, orgs, health, pages):
        app.include_router(module.router)
    app.state.html_errors = pages.render_error
    return app
