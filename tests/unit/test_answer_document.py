"""The read views' balance bodies, made from plain values, equal the answer models' JSON."""

from __future__ import annotations

from collections import defaultdict

from domain.credits.balance import (
    Ledger,
    answer_document,
    answer_from_ledger,
    parse_period,
    registration_of,
)
from domain.credits.lines import RecordedFact, credit_lines
from domain.facts import parse_fact
from domain.policy.pack import SHIPPED_PACKS, load_pack
from infra.sample.district import DemoWriter
from projections.learner_views import LearnerFold, SharedDocuments, periods_to_show


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



def _variant(facts: list[RecordedFact], rank: str, registered: str, twin: str
             ) -> list[RecordedFact]:
    """The same learner's facts, registered with another rank, in another year, or under
    another id."""
    first = facts[0]
    fact = dict(first.fact, occurred_at=registered, payload=dict(first.payload, rank=rank),
                learner_id=first.fact["learner_id"] + twin)
    return [RecordedFact(first.event_id, fact), *facts[1:]]


def test_documents_shared_between_learners_are_each_learners_own() -> None:
    """Learners alike in everything but their rank, their registration year or their id
    read the same sums; documents are shared only where nothing else differs: each row is
    exactly the learner's own answer, with the cache large and small (documents evicted
    and made again)."""
    county, township = "county_division_and_above", "township_section_and_below"
    learners = [_variant(facts, rank, registered, twin) for facts in _streams()[:12]
                for rank, registered, twin in ((county, "2021-01-04T01:00:00Z", ""),
                                               (township, "2021-01-04T01:00:00Z", ""),
                                               (county, "2023-03-01T01:00:00Z", ""),
                                               (county, "2021-01-04T01:00:00Z", "-twin"))]
    packs = {pack_id: load_pack(pack_id) for pack_id in SHIPPED_PACKS}
    for shared in (SharedDocuments(), SharedDocuments(max_documents=20)):
        rows = 0
        for facts in learners:
            registration = registration_of(facts)
            for row in LearnerFold(facts, shared=shared).views().balances:
                assert row.learner_id == registration.learner_id
                pack = packs[row.policy]
                ledger = Ledger(pack, credit_lines(pack, facts))
                status, body = answer_document(ledger, registration,
                                               parse_period(pack, row.period))
                assert (row.status, row.body) == (status, body.decode()), row
                rows += 1
        assert len(shared) <= min(rows * 3 / 4, shared.max_documents)  # twins share
