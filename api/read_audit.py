"""Reads of a person's record, recorded append-only: who (key id, role, org scope) read
which learner through which route, and when. The store is given (`Services.read_audit`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from starlette.types import Scope

# Board routes name a learner only to place them on a public ranking: not a record read.
NOT_RECORD_READS = ("/v1/boards/",)


@dataclass(frozen=True)
class ReadRecord:
    at: datetime
    key_id: str
    role: str
    org_id: str
    learner_id: str
    route: str
    method: str
    status: int


class ReadAudit(Protocol):
    def record(self, entry: ReadRecord) -> None:
        """Append one read; raises when it cannot be kept (the read is then not answered)."""

    def entries(self, *, learner_id: str | None = None, key_id: str | None = None,
                since: datetime | None = None, limit: int = 100) -> list[ReadRecord]:
        """Newest first."""


class NoReadAudit:
    def record(self, entry: ReadRecord) -> None:
        return None

    def entries(self, *, learner_id: str | None = None, key_id: str | None = None,
                since: datetime | None = None, limit: int = 100) -> list[ReadRecord]:
        return []


def audit_entry(scope: Scope, route: str, status: int) -> ReadRecord | None:
    """The record of this request when it is a keyed read of one learner's record: any
    route with a `{learner_id}` in its template (balance, history, verify, archive and
    certificate pages, certificate issue), answered or refused."""
    if "{learner_id}" not in route or route.startswith(NOT_RECORD_READS):
        return None
    principal = scope.get("state", {}).get("principal")
    learner_id = scope.get("path_params", {}).get("learner_id")
    if principal is None or not isinstance(learner_id, str):
        return None
    return ReadRecord(at=datetime.now(UTC), key_id=principal.key_id, role=principal.role,
                      org_id=principal.org_id, learner_id=learner_id, route=route,
                      method=str(scope.get("method", "")), status=status)
