"""`ingest` reads a line of `studyledger export` (a recorded fact with where it sat) as well
as a plain envelope."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace

from consumers.relay import recorded_record
from domain.chain import GENESIS_HASH, link_hash
from infra.files.jsonl_ingest import ParsedLine, Rejection, read_line
from tests.factories import SESSION, envelope, incoming


def exported(fact_type: str = "study_session.recorded", payload: dict | None = None,
             **changes: object) -> dict:
    fact = incoming(fact_type, payload or SESSION, external_id="s-1")
    event = SimpleNamespace(event_id=fact.event_id, fact=fact.canonical,
                            timestamp=datetime(2024, 3, 1, tzinfo=UTC), prev_hash=GENESIS_HASH,
                            hash=link_hash(GENESIS_HASH, fact.canonical))
    return recorded_record(7, event) | changes


def test_an_exported_line_is_read_as_its_fact_with_the_hash_it_had():
    line = exported()
    parsed = read_line(1, json.dumps(line, ensure_ascii=False))
    assert isinstance(parsed, ParsedLine)
    assert str(parsed.incoming.event_id) == line["event_id"]
    assert parsed.incoming.canonical == line["fact"]
    assert parsed.exported_hash == line["hash"]


def test_a_plain_envelope_has_no_exported_hash():
    parsed = read_line(1, json.dumps(envelope("study_session.recorded", SESSION)))
    assert isinstance(parsed, ParsedLine) and parsed.exported_hash is None


def test_an_event_id_that_is_not_the_facts_own_is_refused():
    line = exported(event_id="00000000-0000-0000-0000-000000000001")
    rejection = read_line(3, json.dumps(line))
    assert isinstance(rejection, Rejection)
    assert (rejection.code, rejection.field) == ("event_id_mismatch", "event_id")


def test_unknown_fields_of_the_line_are_refused_as_in_the_envelope():
    rejection = read_line(1, json.dumps(exported(channel="http")))
    assert isinstance(rejection, Rejection)
    assert (rejection.code, rejection.field) == ("invalid_fact", "channel")


def test_a_malformed_hash_is_refused_naming_it():
    rejection = read_line(1, json.dumps(exported(hash="not-a-hash")))
    assert isinstance(rejection, Rejection) and rejection.field == "hash"


def test_a_problem_inside_the_fact_names_its_path_under_fact():
    line = exported()
    line["fact"]["payload"]["progress"] = "1.5"
    rejection = read_line(1, json.dumps(line))
    assert isinstance(rejection, Rejection)
    assert (rejection.code, rejection.field) == ("invalid_fact", "fact.payload.progress")
