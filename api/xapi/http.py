"""The xAPI side of the HTTP API: its headers, its error answers, its credential check.

xAPI answers a bad request with 400 (never FastAPI's 422), names the field in the body in
this project's error shape, and puts `X-Experience-API-Version` on every answer. Handlers
read the request themselves (query, headers, body) so that no framework validation answers
in another shape first.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from domain.errors import StoreUnavailableError
from domain.xapi.application import StatementConflictError
from domain.xapi.documents import (
    DocumentConflictError,
    DocumentMergeError,
    DocumentPreconditionError,
)
from domain.xapi.validation import StatementInvalidError

from ..auth import Principal
from ..errors import STORE_RETRY_AFTER_SECONDS
from ..services import Services
from .backend import LrsBackend

XAPI_VERSION = "2.0.0"
SUPPORTED_VERSIONS = ("1.0.3", "2.0.0")
READER_ROLES = frozenset({"lrs", "admin", "auditor"})
log = logging.getLogger("studyledger.xapi")


class XapiError(Exception):
    def __init__(self, status: int, message: str, field: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.field = status, message, field
        self.headers = headers or {}


def bad_request(message: str, field: str | None = None) -> XapiError:
    return XapiError(400, message, field)


CODES = {400: "invalid_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
         409: "conflict", 412: "precondition_failed", 413: "too_large",
         503: "store_unavailable"}


def error_response(error: XapiError) -> Response:
    body = {"error": {"code": CODES.get(error.status, "error"), "message": error.message,
                      "details": [{"field": error.field, "message": error.message}]
                      if error.field else []}}
    return JSONResponse(body, status_code=error.status, headers=error.headers)


def json_response(value: Any, status: int = 200, headers: dict[str, str] | None = None
                  ) -> Response:
    return Response(json.dumps(value, ensure_ascii=False, separators=(",", ":")),
                    status_code=status, headers=headers,
                    media_type="application/json; charset=utf-8")


def _as_xapi_error(exc: Exception) -> XapiError | None:
    if isinstance(exc, XapiError):
        return exc
    if isinstance(exc, StatementInvalidError):
        return XapiError(400, str(exc), exc.field)
    if isinstance(exc, StatementConflictError):
        return XapiError(409, str(exc), "id")
    if isinstance(exc, DocumentPreconditionError):
        return XapiError(412, str(exc))
    if isinstance(exc, DocumentConflictError):
        return XapiError(409, str(exc))
    if isinstance(exc, DocumentMergeError):
        return XapiError(400, str(exc), "body")
    if isinstance(exc, StoreUnavailableError):
        return XapiError(503, f"the store is unavailable: {exc}", None,
                         {"Retry-After": str(STORE_RETRY_AFTER_SECONDS)})
    return None


class XapiRoute(APIRoute):
    """Every xAPI answer, error or not, in the xAPI way (see the module docstring)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                response = await handler(request)
            except Exception as exc:
                error = _as_xapi_error(exc)
                if error is None:
                    raise
                response = error_response(error)
            response.headers["X-Experience-API-Version"] = XAPI_VERSION
            return response

        return handle


def check_version_header(request: Request) -> None:
    version = request.headers.get("x-experience-api-version")
    if version is None:
        raise bad_request("the X-Experience-API-Version header is required",
                          "X-Experience-API-Version")
    if not (version.startswith("1.0") or version.startswith("2.0")):
        raise bad_request(f"X-Experience-API-Version {version!r} is not supported; this LRS "
                          f"speaks {', '.join(SUPPORTED_VERSIONS)}", "X-Experience-API-Version")


def backend_of(request: Request) -> LrsBackend:
    services: Services = request.app.state.services
    if services.lrs is None:
        raise XapiError(503, "this server has no xAPI store configured")
    lrs: LrsBackend = services.lrs
    return lrs


def _credentials(header: str) -> tuple[str | None, str]:
    """(key id or None, secret) from a Basic or Bearer Authorization header."""
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return None, value.strip()
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            decoded = ""
        key_id, colon, secret = decoded.partition(":")
        if colon and key_id and secret:
            return key_id, secret
    raise XapiError(401, "the Authorization header must be HTTP Basic with ID:SECRET of an "
                    "lrs key (or Bearer with an auditor or admin key)",
                    headers={"WWW-Authenticate": 'Basic realm="xapi"'})


async def xapi_principal(request: Request, *, write: bool) -> Principal:
    """The caller: an lrs key reads and writes; an auditor or admin key only reads."""
    header = request.headers.get("authorization")
    if header is None:
        raise XapiError(401, "the xAPI resources need credentials: HTTP Basic with the "
                        "ID:SECRET of an lrs key", headers={"WWW-Authenticate":
                                                           'Basic realm="xapi"'})
    key_id, secret = _credentials(header)
    services: Services = request.app.state.services
    known, principal = services.keys.cached_principal(secret)
    if not known:
        principal = await run_in_threadpool(services.keys.principal_for, secret)
    if principal is None or (key_id is not None and principal.key_id != key_id):
        raise XapiError(401, "unknown or revoked credentials",
                        headers={"WWW-Authenticate": 'Basic realm="xapi"'})
    request.state.principal = principal  # for the access log
    if principal.role not in READER_ROLES:
        raise XapiError(403, f"a {principal.role} key may not use the xAPI resources; "
                        "make one with `studyledger keys create --role lrs --basic`")
    if write and principal.role != "lrs":
        raise XapiError(403, f"a {principal.role} key may read statements, not write them; "
                        "statements come from lrs keys")
    return principal


def authority_of(principal: Principal, base_url: str) -> dict[str, Any]:
    """The Agent the LRS names as the authority of statements sent with this key."""
    return {"objectType": "Agent", "name": f"StudyLedger lrs key {principal.key_id}",
            "account": {"homePage": f"{base_url.rstrip('/')}/xapi",
                        "name": principal.key_id}}
