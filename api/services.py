"""What the HTTP API needs from the rest of the system, as parameters of `create_app`.

The composition root (`infra.bootstrap.build_services`) supplies the real ones; `api/`
never imports `infra/`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Protocol

from fastapi import Depends, Request

from domain.application import StudyLedger
from projections.certificate import IssuedCertificate
from projections.ports import ReadViews

from .auth import KeyLookup
from .read_audit import NoReadAudit, ReadAudit
from .telemetry import NoTelemetry, Telemetry
from .xapi.backend import LrsBackend


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
    # The xAPI statement store behind /xapi; None answers 503 there.
    lrs: LrsBackend | None = None


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]
