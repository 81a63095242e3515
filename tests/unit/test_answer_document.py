"""The read views' balance bodies, made from plain values, equal the answer models' JSON."""

from __future__ import annotations

from collections import defaultdict

from domain.credits.balance import (
    Ledger,
    answer_document,
    answer_from_ledger,
    registration_of,
)
from domain.credits.lines import RecordedFact, credit_lines
from domain.facts import parse_fact
from domain.policy.pack import SHIPPED_PACKS, load_pack
from infra.sample.district import DemoWriter
from projections.learner_views import periods_to_show


def _streams() -> list[list[RecordedFact]]:
    by_learner: dict[str, list[RecordedFact]] = defaultdict(list)
    for data in DemoWriter(20210104, 40, 2021, 5).generate():
        incoming = parse_fact(data)
        learner_id = incoming.canonical["learner_id"]
        if learner_id is not None:
            by_learner[learner_id].append(RecordedFact(incoming.event_id, incoming.canonical))
    return [sorted(facts, key=lambda f: f.type != "learner.registered")
            for facts in by_learner.values()]


def test_every_period_of_every_demo_learner_gets_the_models_json_and_status() -> None:
    compared = 0
    for facts in _streams():
        registration = registration_of(facts)
        for pack in (load_pack(pack_id) for pack_id in SHIPPED_PACKS):
            lines = credit_lines(pack, facts)
            ledger = Ledger(pack, lines)
            years = {line.year for line in lines} | {registration.year(pack)}
            for period in periods_to_show(pack, years):
                answer = answer_from_ledger(ledger, registration, period)
                status, body = answer_document(ledger, registration, period)
                assert status == answer.status
                assert body.decode() == answer.model_dump_json()
                compared += 1
    assert compared > 100
