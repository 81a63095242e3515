"""Where a fact goes and whether it may: the org and learner it needs, the sender's write
scope up the org tree, and which aggregate records it. The batch writer (domain.batch_writer)
runs these rules for each fact; a missing prerequisite raises, and the writer parks the fact.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, TypeVar
from uuid import UUID

from domain.archive import ChainedAggregate, LearnerArchive, OrgUnit
from domain.errors import (
    FutureFactError,
    OutOfScopeError,
    UnknownCategoryError,
    learner_missing,
    org_missing,
)
from domain.facts import ORG_FACT_TYPES, IncomingFact
from domain.org_tree import walk_up

if TYPE_CHECKING:
    from domain.application import StudyLedger

FUTURE_TOLERANCE = timedelta(minutes=5)
A = TypeVar("A", bound=ChainedAggregate)


def check_not_future(incoming: IncomingFact, now: datetime) -> None:
    if incoming.envelope.occurred_at > now + FUTURE_TOLERANCE:
        raise FutureFactError(
            f"occurred_at {incoming.canonical['occurred_at']} is more than 5 minutes "
            f"in the future (server time {now.isoformat()})"
        )


class FactRouting:
    """The rules a batch applies to each fact, over the aggregates the batch has touched."""

    app: StudyLedger
    now: datetime
    future_limit: datetime
    touched: dict[UUID, ChainedAggregate | None]
    unrecorded: set[UUID]  # streams named by the batch, known not to be in the store

    def _get(self, cls: type[A], aggregate_id: UUID) -> A | None:
        if aggregate_id not in self.touched:
            self.touched[aggregate_id] = (None if aggregate_id in self.unrecorded
                                          else self.app.get_existing(cls, aggregate_id))
        found = self.touched[aggregate_id]
        assert found is None or isinstance(found, cls)
        return found

    # -- rules -------------------------------------------------------------------------

    def _require_org(self, org_id: str, field: str) -> None:
        if self._get(OrgUnit, OrgUnit.id_for(org_id)) is None:
            raise org_missing(org_id, field)

    def _in_scope(self, org_id: str, scope: str, field: str) -> bool:
        """Is `org_id` the scope org or below it? Walks up the (immutable) parent links; an
        org not registered yet is a prerequisite, not a refusal."""
        def parent_of(current: str) -> str | None:
            unit = self._get(OrgUnit, OrgUnit.id_for(current))
            if unit is None:
                raise org_missing(current, field)
            parent: str | None = unit.parent_id
            return parent

        return any(org == scope for org in walk_up(org_id, parent_of))

    def _check_scope(self, incoming: IncomingFact, scope: str | None) -> None:
        if scope is None:
            return
        payload = incoming.canonical["payload"]
        touched: list[tuple[str, str]] = []
        if incoming.type == "org.registered":
            # A key made for an org may register exactly that org (as a root or under a
            # registered parent): that is how a new district starts over HTTP.
            if payload["org_id"] != scope:
                touched.append((payload["parent_id"] or payload["org_id"],
                                "payload.parent_id" if payload["parent_id"]
                                else "payload.org_id"))
                if payload["parent_id"] is None:
                    raise _out_of_scope(payload["org_id"], scope, "payload.org_id")
        elif incoming.type in ORG_FACT_TYPES:
            touched.append((payload["org_id"], "payload.org_id"))
        else:
            archive = self._get(LearnerArchive, LearnerArchive.id_for(
                incoming.canonical["learner_id"]))
            if archive is not None:
                touched.append((archive.org_id, "learner_id"))
            if incoming.type in ("learner.registered", "learner.transferred"):
                touched.append((payload["org_id"], "payload.org_id"))
        for org_id, field in touched:
            if not self._in_scope(org_id, scope, field):
                raise _out_of_scope(org_id, scope, field)

    def _apply(self, incoming: IncomingFact, scope: str | None, channel: str
               ) -> ChainedAggregate:
        if incoming.envelope.occurred_at > self.future_limit:
            check_not_future(incoming, self.now)
        self._check_scope(incoming, scope)
        if incoming.type in ORG_FACT_TYPES:
            return self._apply_to_org(incoming, channel)
        return self._apply_to_learner(incoming, channel)

    def _apply_to_org(self, incoming: IncomingFact, channel: str) -> OrgUnit:
        payload = incoming.canonical["payload"]
        unit = self._get(OrgUnit, OrgUnit.id_for(payload["org_id"]))
        if unit is None and incoming.type == "org.registered":
            if payload["parent_id"] is not None:
                self._require_org(payload["parent_id"], "payload.parent_id")
            unit = OrgUnit.register(incoming, channel)
            self.touched[unit.id] = unit
            return unit
        if unit is None:
            raise org_missing(payload["org_id"])
        unit.record(incoming, channel)
        return unit

    def _apply_to_learner(self, incoming: IncomingFact, channel: str) -> LearnerArchive:
        learner_id = incoming.canonical["learner_id"]
        payload = incoming.canonical["payload"]
        archive = self._get(LearnerArchive, LearnerArchive.id_for(learner_id))
        if archive is None and incoming.type == "learner.registered":
            self._require_org(payload["org_id"], "payload.org_id")
            archive = LearnerArchive.register(incoming, channel)
            self.touched[archive.id] = archive
            return archive
        if archive is None:
            raise learner_missing(learner_id)
        if incoming.type == "learner.transferred":
            self._require_org(payload["org_id"], "payload.org_id")
        categories = self.app.categories
        if incoming.type == "credits.adjusted" and payload["category"] not in categories:
            raise UnknownCategoryError(
                f"category {payload['category']!r} is not counted by any policy pack "
                f"(known: {', '.join(sorted(categories))})"
            )
        archive.record(incoming, channel)
        return archive


def _out_of_scope(org_id: str, scope: str, field: str) -> OutOfScopeError:
    return OutOfScopeError(
        f"org {org_id} is outside the subtree of {scope} that this key may write to",
        field=field)
