"""The fast encodings give what the slow ones gave, byte for byte where it is hashed.

The canonical form is built off the validated fields and spelled by orjson; facts are decoded
by orjson first; the events' JSON is written and read by orjson. Each is compared here with
the json-module / model_dump code it replaced, which stays the reference.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import uuid4

import pytest
from eventsourcing.persistence import DatetimeAsISO, DecimalAsStr, JSONTranscoder, UUIDAsHex

from domain.facts import (
    _ADDED_OPTIONAL_FIELDS,
    canonical_json,
    canonical_time,
    decode_fact_json,
    fact_adapter,
    parse_fact,
)
from domain.transcoding import OrjsonTranscoder
from infra.sample.district import DemoWriter
from tests.factories import REGISTRATION, envelope

HOSTILE = ["张三明", "tab\there", "line\nfeed", 'quote " and \\ backslash', "emoji 🎓",
           "\u2028\u2029 separators", "\u00a0nbsp", "é composed e\u0301", "<script>&amp;"]


def _reference(data: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The canonical dict and text as the code before orjson made them."""
    model = fact_adapter.validate_python(data)
    payload = model.payload.model_dump(mode="json")
    for name in _ADDED_OPTIONAL_FIELDS & payload.keys():
        if payload[name] is None:
            del payload[name]
    canonical = {"type": model.type, "source": model.source, "external_id": model.external_id,
                 "learner_id": model.learner_id, "occurred_at": canonical_time(model.occurred_at),
                 "actor": model.actor, "payload": payload}
    return canonical, canonical_json(canonical)


def _demo_facts() -> list[dict[str, Any]]:
    return DemoWriter(20210104, 30, 2021, 5).generate()


def test_every_demo_fact_gets_the_canonical_form_and_digest_it_had() -> None:
    for data in _demo_facts():
        incoming = parse_fact(data)
        canonical, text = _reference(data)
        assert incoming.canonical == canonical
        assert list(incoming.canonical["payload"]) == list(canonical["payload"])
        assert incoming.canonical_text == text
        assert incoming.canonical_bytes == text.encode()


@pytest.mark.parametrize("text", HOSTILE)
def test_free_text_is_spelled_as_the_json_module_spells_it(text: str) -> None:
    data = envelope("award.granted", {"award_id": "AW1", "level": "unit", "title": text})
    assert parse_fact(data).canonical_text == _reference(data)[1]
    data = envelope("learner.registered", {**REGISTRATION, "name": text})
    assert parse_fact(data).canonical_text == _reference(data)[1]


@pytest.mark.parametrize("raw", [
    '{"a": 1, "b": [true, null, "x"]}',
    '{"hours": 12.50, "n": 0.12345678901234567890123}',
    '{"n": 123456789012345678901234567890}',
    '{"n": NaN}',
    '{"a": 1, "a": 2}',
    '{"s": "\\ud800"}',
    '[1, 2.5]',
])
def test_facts_decode_as_the_json_module_decodes_them(raw: str) -> None:
    from domain.fact_json import _json_integer

    expected = json.loads(raw, parse_float=Decimal, parse_int=_json_integer)
    got = decode_fact_json(raw)
    assert repr(got) == repr(expected)


def test_malformed_json_raises_the_json_module_error() -> None:
    with pytest.raises(json.JSONDecodeError) as raised:
        decode_fact_json('{"a": ')
    with pytest.raises(json.JSONDecodeError) as expected:
        json.loads('{"a": ')
    assert str(raised.value) == str(expected.value)


def _transcoders() -> tuple[OrjsonTranscoder, JSONTranscoder]:
    fast, slow = OrjsonTranscoder(), JSONTranscoder()
    for transcoder in (fast, slow):
        for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
            transcoder.register(transcoding)
    return fast, slow


EVENT_STATES: list[dict[str, Any]] = [
    {"timestamp": datetime(2024, 3, 1, 2, 0, tzinfo=UTC), "event_id": uuid4(),
     "fact": {"type": "t", "learner_id": None, "payload": {"a": "张\n", "b": True, "c": 3}},
     "prev_hash": "0" * 64, "hash": "1" * 64, "channel": "cli", "class_version": 2},
    {"x": [uuid4(), (1, 2.5)]},
    {"x": {"y": {"z": {"w": 1}}}},
    {"x": {"y": uuid4()}},
    {"x": Decimal("1.50"), "y": {"p": {"_type_": "decimal_str", "_data_": "1"}}},
    {"x": 2**70, "y": 1.5},
]


@pytest.mark.parametrize("state", EVENT_STATES)
def test_events_are_written_and_read_as_the_library_does(state: dict[str, Any]) -> None:
    fast, slow = _transcoders()
    by_fast, by_slow = fast.encode(state), slow.encode(state)
    assert json.loads(by_fast) == json.loads(by_slow)
    assert fast.decode(by_slow) == slow.decode(by_fast) == slow.decode(by_slow)


def test_a_fact_sent_to_another_process_comes_back_the_same() -> None:
    """A fact validated in a worker process crosses in its wire form; what is rebuilt here
    has the same canonical dict (in the same key order, which the stored event keeps), text,
    bytes, digest and event id, and a header with the envelope's fields."""
    import pickle

    from domain.facts import from_wire, to_wire

    sent = [*_demo_facts(),
            envelope("award.granted", {"award_id": "AW1", "level": "unit", "title": HOSTILE[3]}),
            envelope("training.attended", {"program_id": "P", "kind": "thematic",
                                           "hours": Decimal("1.6666666666666667"),
                                           "leave_hours": 0}, at="2024-03-01T09:30:00.25+08:00")]
    for data in sent:
        incoming = parse_fact(data)
        back = from_wire(pickle.loads(pickle.dumps(to_wire(incoming))))
        assert back.canonical == incoming.canonical
        assert list(back.canonical) == list(incoming.canonical)
        assert list(back.canonical["payload"]) == list(incoming.canonical["payload"])
        assert (back.canonical_text, back.canonical_bytes, back.digest, back.event_id) == (
            incoming.canonical_text, incoming.canonical_bytes, incoming.digest,
            incoming.event_id)
        for name in ("type", "source", "external_id", "learner_id", "occurred_at", "actor"):
            assert getattr(back.envelope, name) == getattr(incoming.envelope, name), name
