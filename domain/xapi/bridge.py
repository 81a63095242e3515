"""The bridge from xAPI statements to learner facts, driven by a versioned mapping (data).

What happened (a statement) stays apart from what counts: a mapping file says which
statements become which of this project's facts, for which learners, with which course,
exam or programme data from its catalog; the policy packs then count those facts as they
count any other. A derived fact's key is (source of the mapping, statement id), so deriving
again (a replay, a retry) is a duplicate, never a second credit; a voiding statement becomes
`record.voided` of the fact its target produced.
"""

from __future__ import annotations

import re
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from domain.identity import fact_event_id

from .validation import VOIDED

FactType = Literal["study_session.recorded", "exam.graded", "training.attended"]
_DURATION_PARTS = re.compile(
    r"^P(?:(?P<days>\d+(?:\.\d+)?)D)?(?:T(?:(?P<hours>\d+(?:\.\d+)?)H)?"
    r"(?:(?P<minutes>\d+(?:\.\d+)?)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LearnerRule(_Strict):
    """How an actor names a registered learner: `account` (account.name under this
    homePage is the learner id) or `mbox` (the part before @ under this domain)."""

    by: Literal["account", "mbox"]
    account_home_page: str | None = None
    mbox_domain: str | None = None

    @model_validator(mode="after")
    def _one_key(self) -> LearnerRule:
        needed = "account_home_page" if self.by == "account" else "mbox_domain"
        if getattr(self, needed) is None:
            raise ValueError(f"learner.by = {self.by!r} needs learner.{needed}")
        return self


class Rule(_Strict):
    verbs: list[str] = Field(min_length=1)
    fact: FactType


class CatalogEntry(_Strict):
    """What the project knows about one activity id (only the fields its fact needs)."""

    course_id: str | None = None
    course_hours: Decimal | None = None
    required: bool | None = None
    exam_id: str | None = None
    pass_score: Decimal | None = None
    program_id: str | None = None
    kind: str | None = None
    hours: Decimal | None = None


NEEDS: dict[str, tuple[str, ...]] = {
    "study_session.recorded": ("course_id", "course_hours", "required"),
    "exam.graded": ("exam_id", "pass_score"),
    "training.attended": ("program_id", "kind", "hours"),
}


class XapiMapping(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,40}$")
    version: str = Field(min_length=1)
    learner: LearnerRule
    rule: list[Rule] = Field(min_length=1)
    catalog: dict[str, CatalogEntry] = {}

    @property
    def source(self) -> str:
        """The source of every derived fact (a fact source may not hold ':')."""
        return f"xapi-{self.id}"

    @property
    def actor(self) -> str:
        return f"xapi mapping {self.id} v{self.version}"


def load_mapping(path: str | Path) -> XapiMapping:
    with open(path, "rb") as handle:
        return XapiMapping.model_validate(tomllib.load(handle))


def _learner_of(mapping: XapiMapping, statement: dict[str, Any]) -> str | None:
    actor = statement.get("actor") or {}
    rule = mapping.learner
    if rule.by == "account":
        account = actor.get("account")
        if isinstance(account, dict) and account.get("homePage") == rule.account_home_page:
            return str(account.get("name"))
        return None
    mbox = str(actor.get("mbox", ""))
    local, _, domain = mbox.removeprefix("mailto:").partition("@")
    return local if mbox.startswith("mailto:") and domain == rule.mbox_domain and local else None


def minutes_of(duration: Any) -> Decimal:
    """Minutes of an ISO 8601 duration (days, hours, minutes, seconds); 0 when absent."""
    match = _DURATION_PARTS.match(duration) if isinstance(duration, str) else None
    if match is None:
        return Decimal(0)
    parts = {k: Decimal(v) for k, v in match.groupdict().items() if v}
    total = (parts.get("days", Decimal(0)) * 1440 + parts.get("hours", Decimal(0)) * 60
             + parts.get("minutes", Decimal(0)) + parts.get("seconds", Decimal(0)) / 60)
    return total.quantize(Decimal("0.01"))


def _payload(fact: str, entry: CatalogEntry, statement: dict[str, Any]) -> dict[str, Any] | None:
    result = statement.get("result") or {}
    if fact == "study_session.recorded":
        return {"course_id": entry.course_id, "course_hours": str(entry.course_hours),
                "required": entry.required, "minutes": str(minutes_of(result.get("duration"))),
                "progress": "1"}
    if fact == "exam.graded":
        score = result.get("score") or {}
        if "raw" in score:
            value = Decimal(str(score["raw"]))
        elif "scaled" in score:
            value = Decimal(str(score["scaled"])) * 100
        else:
            return None  # a grade without a score is not an exam result
        return {"exam_id": entry.exam_id, "score": str(value),
                "pass_score": str(entry.pass_score), "attempt": 1}
    return {"program_id": entry.program_id, "kind": entry.kind, "hours": str(entry.hours),
            "leave_hours": "0"}


def derive(mapping: XapiMapping, statement: dict[str, Any]) -> dict[str, Any] | None:
    """The learner fact (a v1 envelope) a stored statement stands for under the mapping, or
    None when the mapping does not count it (verb, activity or learner not mapped)."""
    verb = statement["verb"]["id"]
    rule = next((r for r in mapping.rule if verb in r.verbs), None)
    target = statement.get("object") or {}
    if rule is None or target.get("objectType", "Activity") != "Activity":
        return None
    entry = mapping.catalog.get(str(target.get("id")))
    learner = _learner_of(mapping, statement)
    if entry is None or learner is None or any(
            getattr(entry, name) is None for name in NEEDS[rule.fact]):
        return None
    payload = _payload(rule.fact, entry, statement)
    if payload is None:
        return None
    return {"type": rule.fact, "source": mapping.source, "external_id": str(statement["id"]),
            "learner_id": learner, "occurred_at": statement["timestamp"],
            "actor": mapping.actor, "payload": payload}


def derive_void(mapping: XapiMapping, voiding: dict[str, Any], target: dict[str, Any] | None
                ) -> dict[str, Any] | None:
    """`record.voided` of the fact the voided statement produced, if it produced one."""
    if voiding["verb"]["id"] != VOIDED or target is None:
        return None
    derived = derive(mapping, target)
    if derived is None:
        return None
    return {"type": "record.voided", "source": mapping.source,
            "external_id": str(voiding["id"]), "learner_id": derived["learner_id"],
            "occurred_at": voiding["timestamp"], "actor": mapping.actor,
            "payload": {"target_event_id": str(fact_event_id(mapping.source,
                                                               derived["external_id"])),
                        "reason": f"xAPI statement {target['id']} voided by {voiding['id']}"}}
