"""Issuing and verifying study-hour certificates, for the pages and the JSON routes alike.

A code is 80 random bits (secrets), shown as four groups of four base-32 letters and digits
(no 0/O or 1/I confusion when typed from paper); it means something only because it is
recorded, so a made-up code is simply not found.
"""

from __future__ import annotations

import base64
import re
import secrets
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlencode

import segno

from domain.policy.pack import load_pack
from projections.certificate import (
    CERTIFICATE_PACK,
    Certificate,
    CertificateTotals,
    IssuedCertificate,
    certificate,
    check_period_started,
    issued_today,
)

from .auth import Principal
from .services import Services

CODE_BYTES = 10  # 80 bits: unguessable, and 16 base-32 characters
# Longer input is not looked up at all (a code is 16 characters, 19 with its dashes).
MAX_CODE_CHARS = 64


def new_code() -> str:
    return base64.b32encode(secrets.token_bytes(CODE_BYTES)).decode()


def normalize_code(text: str) -> str:
    """The stored spelling of a code as a person may type it: any case, dashes, spaces."""
    return re.sub(r"[\s-]", "", text[:MAX_CODE_CHARS]).upper()


def display_code(code: str) -> str:
    return "-".join(code[i:i + 4] for i in range(0, len(code), 4))


def verify_url(services: Services, code: str) -> str:
    base = services.public_base_url.rstrip("/")
    return f"{base}/certificates/verify?{urlencode({'code': display_code(code)})}"


def qr_svg(url: str) -> str:
    """The URL as a QR code, inline SVG (drawn here: no image service, no network)."""
    svg: str = segno.make(url, error="m").svg_inline(scale=3, border=2)
    return svg


def current(services: Services, learner_id: str, period: str) -> Certificate:
    """The certificate as the learner's record stands now (refused for future periods)."""
    pack = load_pack(CERTIFICATE_PACK)
    check_period_started(pack, period, issued_today(services.clock(), pack))
    return certificate(pack, services.ledger.facts_of(learner_id), period)


def issue(services: Services, issuer: Principal, learner_id: str,
          period: str) -> tuple[Certificate, IssuedCertificate]:
    """Record a new certificate of the learner's hours for the period, with a fresh code."""
    cert = current(services, learner_id, period)
    issued = IssuedCertificate(
        code=new_code(), learner_id=learner_id, period=cert.period, policy=cert.policy,
        digest=cert.digest, totals=cert.totals(), issued_at=services.clock(),
        issued_by=issuer.key_id, issuer_org_id=issuer.org_id)
    services.certificates.record(issued)
    return cert, issued


Status = Literal["valid", "changed", "unknown"]


@dataclass(frozen=True)
class Verification:
    status: Status
    issued: IssuedCertificate | None = None
    now: CertificateTotals | None = None  # the totals the record gives today
    name: str | None = None  # the learner's full name (the page masks it)


def verify(services: Services, code: str) -> Verification:
    """valid: the record still gives what was printed; changed: it no longer does (the
    totals then and now say how); unknown: no certificate was ever issued with this code."""
    issued = services.certificates.find(normalize_code(code)) if code else None
    if issued is None:
        return Verification("unknown")
    pack = load_pack(CERTIFICATE_PACK)
    cert = certificate(pack, services.ledger.facts_of(issued.learner_id), issued.period)
    same = cert.digest == issued.digest and cert.policy == issued.policy
    return Verification("valid" if same else "changed", issued, cert.totals(), cert.name)
