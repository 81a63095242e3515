"""The one error model of the HTTP API, and every mapping from an exception to it.

Every non-2xx answer has the body `{"error": {"code", "message", "details": [{field,
message}]}}`. Domain errors keep their stable codes; no handler ever returns a traceback.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from domain.errors import (
    FactConflictError,
    LearnerNotRegisteredError,
    OrgNotRegisteredError,
    OutOfScopeError,
    StoreUnavailableError,
    StudyLedgerError,
)

log = logging.getLogger("studyledger.api")

# What a 503 asks the caller to wait before trying again: a restarting database is usually
# back within seconds, and the server reconnects by itself.
STORE_RETRY_AFTER_SECONDS = 5


class ErrorDetail(BaseModel):
    field: str | None
    message: str


class ErrorInfo(BaseModel):
    code: str
    message: str
    details: list[ErrorDetail] = []


class ErrorBody(BaseModel):
    error: ErrorInfo


class ApiError(Exception):
    """Raised by handlers for refusals that are not domain errors (auth, limits)."""

    def __init__(self, status: int, code: str, message: str,
                 details: list[ErrorDetail] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.details = details or []


def unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message)


def forbidden(message: str) -> ApiError:
    return ApiError(403, "forbidden", message)


def status_of(error: StudyLedgerError, *, reading: bool) -> int:
    """HTTP status of a domain error. An unknown learner or org is 404 on a read, but on a
    write it is a rule the fact broke (422)."""
    if isinstance(error, OutOfScopeError):
        return 403
    if isinstance(error, FactConflictError):
        return 409
    if reading and isinstance(error, LearnerNotRegisteredError | OrgNotRegisteredError):
        return 404
    return 422


def domain_error_info(error: StudyLedgerError) -> ErrorInfo:
    return ErrorInfo(code=error.code, message=error.message,
                     details=[ErrorDetail(field=error.field, message=error.message)])


def store_unavailable_info() -> ErrorInfo:
    return ErrorInfo(code=StoreUnavailableError.code,
                     message="the store is not answering (down or restarting): send the "
                     "request again after Retry-After seconds (a fact that did get stored "
                     "then answers duplicate)")


def validation_details(error: RequestValidationError) -> list[ErrorDetail]:
    """A request's problems with their paths as dotted strings ("query.as_of")."""
    return [ErrorDetail(field=".".join(str(p) for p in problem["loc"]) or None,
                        message=problem["msg"]) for problem in error.errors()]


def error_response(status: int, info: ErrorInfo, headers: dict[str, str] | None = None
                   ) -> JSONResponse:
    return JSONResponse(ErrorBody(error=info).model_dump(mode="json"), status_code=status,
                        headers=headers)


API_PREFIXES = ("/v1/", "/health", "/openapi", "/docs", "/redoc")


def _respond(request: Request, status: int, info: ErrorInfo,
             headers: dict[str, str] | None = None) -> Response:
    """JSON for the API; the same error as an HTML page for the human-facing pages."""
    html_errors = getattr(request.app.state, "html_errors", None)
    if html_errors is not None and not request.url.path.startswith(API_PREFIXES):
        page: Response = html_errors(request, status, info.message)
        page.headers.update(headers or {})
        return page
    return error_response(status, info, headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return _respond(request, exc.status, ErrorInfo(code=exc.code, message=exc.message,
                                                       details=exc.details), headers)

    @app.exception_handler(StoreUnavailableError)
    async def _store_unavailable(request: Request, exc: StoreUnavailableError) -> Response:
        # Not a fault of the request, nor a bug: one line in the log, no traceback.
        log.warning("store unavailable on %s %s: %s", request.method, request.url.path, exc)
        return _respond(request, 503, store_unavailable_info(),
                        {"Retry-After": str(STORE_RETRY_AFTER_SECONDS)})

    @app.exception_handler(StudyLedgerError)
    async def _domain_error(request: Request, exc: StudyLedgerError) -> Response:
        return _respond(request, status_of(exc, reading=True), domain_error_info(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(request: Request, exc: RequestValidationError) -> Response:
        details = validation_details(exc)
        message = "; ".join(f"{d.field}: {d.message}" for d in details[:5])
        return _respond(request, 422, ErrorInfo(code="invalid_request", message=message,
                                                details=details))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        codes = {400: "malformed_body", 404: "not_found", 405: "method_not_allowed",
                 413: "body_too_large"}
        message = str(exc.detail)
        if exc.status_code == 400:
            # FastAPI's 400: the body is not JSON it can read (invalid UTF-8, nesting too
            # deep, a number over 4,300 digits); plain syntax errors are a 422 already.
            message = ("the request body could not be parsed: send UTF-8 JSON without "
                       "excessive nesting or overlong numbers")
        # The 405's Allow header (the methods the path has) is kept, as HTTP requires.
        return _respond(request, exc.status_code, ErrorInfo(
            code=codes.get(exc.status_code, "http_error"), message=message),
            dict(exc.headers or {}))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        # Logged with its traceback for the operator; the caller gets a reference only.
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _respond(request, 500, ErrorInfo(
            code="internal_error",
            message=f"the server failed ({type(exc).__name__}); it has been logged"))


# What every operation that reads a body may answer besides its own (the app adds them to
# the OpenAPI document), each with the error model.
BODY_ERRORS: dict[str, str] = {
    "400": "The body is not JSON that can be read (invalid UTF-8, nesting too deep, a number "
           "over 4,300 digits)",
    "413": "The body is over the server's size limit",
}
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "No API key, or an unknown or revoked one"},
    403: {"model": ErrorBody, "description": "The key's role or org subtree does not allow it"},
    422: {"model": ErrorBody, "description": "Invalid input, with field paths"},
    503: {"model": ErrorBody, "description": "The store is not answering (store_unavailable); "
          "try again after the Retry-After header's seconds"},
}
