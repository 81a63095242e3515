"""What the HTTP API needs from the rest of the system, as parameters of `create_app`.

The composition root (`infra.serve`) supplies the real ones; `api/` never imports `infra/`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Protocol

from fastapi import Depends, Request

from domain.application import StudyLedger
from projections.audit_trail import TrailPage
from projections.certificate import IssuedCertificate
from projections.ranking_board import BoardAnswer

from .auth import KeyLookup
from .read_audit import NoReadAudit, ReadAudit
from .telemetry import NoTelemetry, Telemetry


class ReadViews(Protocol):
    """Queries over the projected read tables (and the store where a view has no answer)."""

    def position(self) -> int: ...

    def runner_state(self) -> tuple[str, int | None, str | None] | None:
        """(status, position, error) the projection runner last reported: "running", or
        "stalled" at the log position of a fact it cannot project. None: never reported."""

    def learner_org(self, learner_id: str) -> str | None: ...

    def org_exists(self, org_id: str) -> bool: ...

    def org_table(self) -> list[tuple[str, str, str | None, bool | None]]:
        """(org_id, name, parent_id, board_published) of every org."""

    def in_subtree(self, org_id: str, ancestor: str) -> bool: ...

    def learner_balance(self, learner_id: str, policy: str, period: str
                        ) -> tuple[str | None, str | None]:
        """(the learner's org or None, the stored balance answer or None)."""

    def board(self, policy: str, period: str, *, org: str | None, limit: int,
              cursor: str | None, anonymous: bool) -> BoardAnswer:
        """Cursors in and out are sealed (api.cursors): opaque, bound to this board, and
        InvalidCursorError for any other."""

    def board_is_public(self, org: str) -> bool: ...

    def rank(self, policy: str, period: str, learner_id: str,
             org: str | None) -> dict[str, Any]: ...

    def compliance(self, org: str, policy: str, period: str) -> dict[str, Any]: ...

    def org_statistics(self, org: str, policy: str, year: int) -> dict[str, Any]: ...

    def find_learners(self, org: str, text: str, limit: int) -> list[tuple[str, str, str]]:
        """(learner_id, name, org_id) under `org` whose id is `text` or whose name holds it."""

    def stored_periods(self, policy: str) -> list[str]:
        """The periods the views hold any learner's balance for, under `policy`."""

    def history(self, learner_id: str, *, known_at: datetime | None,
                happened_by: datetime | None, limit: int, cursor: str | None) -> TrailPage:
        """Cursors sealed as the board's, bound to this learner."""


class CertificateRegister(Protocol):
    """Issued certificates, kept for good (never a projection) and found by code."""

    def record(self, issued: IssuedCertificate) -> None: ...

    def find(self, code: str) -> IssuedCertificate | None: ...


class MemoryCertificateRegister:
    """A register that lasts as long as the process: for apps built without a store."""

    def __init__(self) -> None:
        self._issued: dict[str, IssuedCertificate] = {}

    def record(self, issued: IssuedCertificate) -> None:
        self._issued[issued.code] = issued

    def find(self, code: str) -> IssuedCertificate | None:
        return self._issued.get(code)


@dataclass
class Services:
    ledger: StudyLedger
    views: ReadViews
    keys: KeyLookup
    clock: Callable[[], datetime]
    store_name: str = "sqlite"
    max_batch_facts: int = 1000
    max_body_bytes: int = 4 * 1024 * 1024
    # ?wait=true answers once the views reach the write, or after this many seconds.
    wait_timeout_seconds: float = 10.0
    telemetry: Telemetry = field(default_factory=NoTelemetry)
    read_audit: ReadAudit = field(default_factory=NoReadAudit)
    certificates: CertificateRegister = field(default_factory=MemoryCertificateRegister)
    # Where the public reaches the verification page: printed on certificates (and in their
    # QR code), so never taken from the request's own host.
    public_base_url: str = "http://127.0.0.1:8000"


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]
