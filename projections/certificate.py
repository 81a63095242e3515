"""The study-hour certificate (学时证明书): the classes and courses that count for a period
under the hours pack, their totals, and a verification code bound to that content.

The code is the learner, the period and a digest of every counted line, so a verifier can
recompute it from the current record: a later void (or a late fact) changes the digest, and
the verification page says the record has changed since the certificate was issued.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Literal
from uuid import UUID
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from domain.credits.balance import Amount, PolicyRef, learner_rank, parse_period
from domain.credits.lines import RecordedFact, credit_lines
from domain.errors import PolicyError
from domain.policy.pack import PolicyPack
from projections.learner_views import current_org_id

CERTIFICATE_PACK = "cadre-regs-2023"


class CertificateItem(BaseModel):
    kind: Literal["class", "course"]
    event_id: UUID
    title: str  # the program or course id the platform reported
    detail: str  # class kind, or required / elective
    on: date
    hours: Amount
    required: bool


class Certificate(BaseModel):
    learner_id: str
    name: str
    org_id: str
    policy: PolicyRef
    period: str
    items: list[CertificateItem]
    centralized_hours: Amount
    online_hours: Amount
    required_course_hours: Amount
    total_hours: Amount
    code: str


def _item(fact: RecordedFact, hours: Decimal, zone: ZoneInfo) -> CertificateItem:
    payload = fact.payload
    on = fact.occurred_at.astimezone(zone).date()
    if fact.type == "training.attended":
        return CertificateItem(kind="class", event_id=fact.event_id, title=payload["program_id"],
                               detail=payload["kind"], on=on, hours=hours, required=False)
    required = bool(payload.get("required"))
    return CertificateItem(kind="course", event_id=fact.event_id, title=payload["course_id"],
                           detail="required" if required else "elective", on=on, hours=hours,
                           required=required)


def certificate_digest(learner_id: str, pack: PolicyPack, period: str,
                       items: Sequence[CertificateItem]) -> str:
    content = [learner_id, pack.id, pack.version, period,
               [[str(i.event_id), str(i.hours)] for i in items]]
    raw = hashlib.sha256(json.dumps(content, separators=(",", ":")).encode()).digest()
    return base64.b32encode(raw[:10]).decode()  # 16 letters and digits, no padding


def certificate(pack: PolicyPack, facts: Sequence[RecordedFact], period: str) -> Certificate:
    """The certificate for one learner's facts (as they stand now) and a year or a cycle."""
    if pack.unit != "hours":
        raise PolicyError(f"certificates count hours; {pack.id} counts {pack.unit}",
                          field="policy")
    span = parse_period(pack, period)
    learner_id, _ = learner_rank(facts)
    registration = next(f for f in facts if f.type == "learner.registered")
    org_id = current_org_id(facts)
    by_id = {f.event_id: f for f in facts}
    zone = ZoneInfo(pack.time_zone)
    items = sorted(
        (_item(by_id[line.event_id], line.amount, zone)
         for line in credit_lines(pack, facts)
         if line.year in span.years and by_id[line.event_id].type
         in ("training.attended", "study_session.recorded")),
        key=lambda i: (i.on, i.title, str(i.event_id)))
    centralized = sum((i.hours for i in items if i.kind == "class"), Decimal(0))
    online = sum((i.hours for i in items if i.kind == "course"), Decimal(0))
    required = sum((i.hours for i in items if i.required), Decimal(0))
    return Certificate(
        learner_id=learner_id, name=registration.payload["name"], org_id=org_id,
        policy=PolicyRef(id=pack.id, version=pack.version), period=period, items=items,
        centralized_hours=centralized, online_hours=online, required_course_hours=required,
        total_hours=centralized + online,
        code=f"{learner_id}.{period}.{certificate_digest(learner_id, pack, period, items)}")


def parse_code(code: str) -> tuple[str, str, str]:
    """(learner_id, period, digest) of a certificate code; PolicyError when malformed."""
    parts = code.strip().rsplit(".", 2)
    if len(parts) != 3 or not all(parts):
        raise PolicyError("a certificate code looks like L000042.2024.ABCDEFGH23456789",
                          field="code")
    return parts[0], parts[1], parts[2]


def issued_today(now: datetime, pack: PolicyPack) -> date:
    return now.astimezone(ZoneInfo(pack.time_zone)).date()
