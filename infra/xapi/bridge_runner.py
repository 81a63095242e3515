"""Runs the xAPI bridge over the statement log: statements in, learner facts out.

It keeps its own position in the statement log (beside the query tables' one), moved only
after the facts of a page are recorded, so a failure is retried from the same statements;
derived facts are keyed by statement id, so a retry records nothing twice. Statements about
actors that are not registered learners stay in the LRS only; a derived fact the ledger
refuses is logged with its reason, never dropped in silence.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from domain.application import StudyLedger
from domain.archive import LearnerArchive
from domain.facts import parse_fact
from domain.xapi.application import XapiStatements
from domain.xapi.bridge import XapiMapping, derive, derive_void
from infra.xapi.statement_tables import StatementTables

log = logging.getLogger("studyledger.xapi.bridge")
BRIDGE_POSITION = 2  # the row of xapi_position the bridge keeps


class BridgeRunner:
    def __init__(self, mapping: XapiMapping, ledger: StudyLedger, statements: XapiStatements,
                 tables: StatementTables, clock: Callable[[], datetime]) -> None:
        self.mapping, self.ledger, self.statements = mapping, ledger, statements
        self.tables, self.clock = tables, clock

    def run(self, page_size: int = 500) -> int:
        """Derive and record the facts of every statement past the bridge's position; how
        many facts were recorded (duplicates included)."""
        recorded = 0
        while True:
            after = self.tables.position(BRIDGE_POSITION)
            page = self.statements.recorder.select_notifications(start=after + 1,
                                                                 limit=page_size)
            if not page:
                return recorded
            by_org: dict[str, list[dict[str, Any]]] = {}
            for notification in page:
                event: Any = self.statements.mapper.to_domain_event(notification)
                envelope = self._derive(json.loads(event.statement))
                if envelope is not None and self._registered(envelope["learner_id"]):
                    by_org.setdefault(event.org_id, []).append(envelope)
            for org_id, envelopes in by_org.items():
                recorded += self._record(org_id, envelopes)
            self.tables.move_position(BRIDGE_POSITION, page[-1].id)

    def _derive(self, statement: dict[str, Any]) -> dict[str, Any] | None:
        target = statement.get("object") or {}
        if target.get("objectType") == "StatementRef":
            voided = self.statements.stored(str(target["id"]))
            return derive_void(self.mapping, statement,
                               voided.parsed() if voided is not None else None)
        return derive(self.mapping, statement)

    def _registered(self, learner_id: str) -> bool:
        archive = self.ledger.get_existing(LearnerArchive, LearnerArchive.id_for(learner_id))
        return archive is not None

    def _record(self, org_id: str, envelopes: list[dict[str, Any]]) -> int:
        facts = []
        for envelope in envelopes:
            try:
                facts.append(parse_fact(envelope))
            except ValueError as exc:
                log.warning("xAPI statement %s maps to no valid fact under %s: %s",
                            envelope["external_id"], self.mapping.actor, exc)
        results = self.ledger.record_facts(facts, now=self.clock(), channel="xapi",
                                           within_org=org_id)
        for fact, result in zip(facts, results, strict=True):
            if result.status not in ("stored", "duplicate"):
                log.warning("the fact of xAPI statement %s was not recorded: %s (%s)",
                            fact.envelope.external_id, result.status, result.error)
        return len(results)
