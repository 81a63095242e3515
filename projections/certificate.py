"""The study-hour certificate (学时证明书): the classes and courses that count for a period
under the hours pack, their totals, and a digest of every counted line.

A certificate's code is not derived from its content (anyone could then make one up): it is
random and recorded when the certificate is issued, with the digest and the totals printed.
Verification finds the record by its code and compares that digest with the record as it
stands now: a later void (or a late fact) changes it, and the verifier sees what changed.
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
    title: str  # the course title the platform sent, else the program or course id
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
    digest: str  # of every counted line: changes when the record behind it changes

    def totals(self) -> CertificateTotals:
        return CertificateTotals(
            centralized_hours=self.centralized_hours, online_hours=self.online_hours,
            required_course_hours=self.required_course_hours, total_hours=self.total_hours)


class CertificateTotals(BaseModel):
    centralized_hours: Amount
    online_hours: Amount
    required_course_hours: Amount
    total_hours: Amount


class IssuedCertificate(BaseModel):
    """What is recorded when a certificate is issued, found again by its code."""

    code: str
    learner_id: str
    period: str
    policy: PolicyRef
    digest: str
    totals: CertificateTotals
    issued_at: datetime
    issued_by: str  # the issuing key's id
    issuer_org_id: str  # the unit the issuing key belongs to


def _item(fact: RecordedFact, hours: Decimal, zone: ZoneInfo) -> CertificateItem:
    payload = fact.payload
    on = fact.occurred_at.astimezone(zone).date()
    if fact.type == "training.attended":
        return CertificateItem(kind="class", event_id=fact.event_id, title=payload["program_id"],
                               detail=payload["kind"], on=on, hours=hours, required=False)
    required = bool(payload.get("required"))
    title = payload.get("course_title") or payload["course_id"]  # the title when sent
    return CertificateItem(kind="course", event_id=fact.event_id, title=title,
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
        digest=certificate_digest(learner_id, pack, period, items))


def check_period_started(pack: PolicyPack, period: str, today: date) -> None:
    """PolicyError for a period that has not begun: a certificate of hours not yet studied
    would certify nothing and stay valid until the year came."""
    if parse_period(pack, period).first > today.year:
        raise PolicyError(f"period {period} has not started yet (today is {today})",
                          field="period")


def issued_today(now: datetime, pack: PolicyPack) -> date:
    return now.astimezone(ZoneInfo(pack.time_zone)).date()
