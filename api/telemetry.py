"""What the HTTP API reports about itself: request metrics, fact outcomes, the access log.

The metric objects live with the composition root (`infra.ops.metrics`); the API sees them only
through `Telemetry`, so `api/` needs no metrics library and tests may pass a fake.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any, Protocol

from fastapi.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from domain.errors import StoreUnavailableError

from .errors import STORE_RETRY_AFTER_SECONDS, error_response, store_unavailable_info
from .read_audit import ReadAudit, audit_entry

access_log = logging.getLogger("studyledger.access")


class Telemetry(Protocol):
    def request_done(self, method: str, route: str, status: int, seconds: float) -> None: ...

    def facts_recorded(self, channel: str, statuses: Iterable[str]) -> None:
        """One status per fact: stored, duplicate, rejected or parked."""

    def exposition(self) -> tuple[bytes, str]:
        """The scrape body and its content type."""


class NoTelemetry:
    def request_done(self, method: str, route: str, status: int, seconds: float) -> None:
        return None

    def facts_recorded(self, channel: str, statuses: Iterable[str]) -> None:
        return None

    def exposition(self) -> tuple[bytes, str]:
        return b"", "text/plain; version=0.0.4; charset=utf-8"


def route_template(scope: Scope) -> str:
    """The matched route's path template: learner ids never become label values."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


def key_id_of(scope: Scope) -> str | None:
    principal = scope.get("state", {}).get("principal")
    return getattr(principal, "key_id", None)


class RequestTelemetryMiddleware:
    """A plain ASGI middleware (no per-request task as BaseHTTPMiddleware has): times each
    request, logs it with the key id (never the key), counts it, and records reads of a
    person's record before the answer leaves."""

    def __init__(self, app: ASGIApp, telemetry: Telemetry, audit: ReadAudit) -> None:
        self.app = app
        self.telemetry = telemetry
        self.audit = audit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        withheld = False

        async def send_recorded(message: Message) -> None:
            nonlocal status, withheld
            if withheld:
                return  # the body of an answer whose read could not be recorded
            if message["type"] == "http.response.start":
                status = int(message["status"])
                try:
                    await self._audit(scope, status)
                except StoreUnavailableError:
                    # Not recorded, not read: the answer is withheld and the caller told to
                    # come back, as for any request while the store is down.
                    withheld, status = True, 503
                    await error_response(503, store_unavailable_info(), {
                        "Retry-After": str(STORE_RETRY_AFTER_SECONDS)})(scope, receive, send)
                    return
            await send(message)

        try:
            await self.app(scope, receive, send_recorded)
        finally:
            self._done(scope, status, time.perf_counter() - started)

    async def _audit(self, scope: Scope, status: int) -> None:
        if status == 503:
            return  # the store did not answer: nothing was read, and there is no audit to write
        entry = audit_entry(scope, route_template(scope), status)
        if entry is not None:
            await run_in_threadpool(self.audit.record, entry)

    def _done(self, scope: Scope, status: int, seconds: float) -> None:
        route, method = route_template(scope), str(scope.get("method", ""))
        self.telemetry.request_done(method, route, status, seconds)
        access_log.info("%s %s %s %d %.1fms key=%s", _client(scope), method, scope["path"],
                        status, seconds * 1000, key_id_of(scope) or "-")


def _client(scope: Scope) -> str:
    client: Any = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else "-"
