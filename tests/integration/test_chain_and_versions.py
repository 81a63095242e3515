"""The hash chain as auditors check it, against rows altered directly in the database; and
event versioning through the real mapper and store."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime

import psycopg
import pytest

from domain.archive import LearnerArchive
from domain.chain import GENESIS_HASH, link_hash
from domain.identity import learner_archive_id
from infra.settings import sqlite_path
from tests.factories import REGISTRATION, SESSION, incoming

NOW = datetime(2026, 11, 22, tzinfo=UTC)


@pytest.fixture
def archive_of_five(ledger):
    facts = [
        incoming("org.registered", {"org_id": "500104-07", "name": "单位", "parent_id": None},
                 learner_id=None),
        incoming("learner.registered", REGISTRATION),
        *[incoming("study_session.recorded", SESSION | {"course_id": f"C{i}"})
          for i in range(4)],
    ]
    assert {r.status for r in ledger.record_facts(facts, now=NOW, channel="t")} == {"stored"}
    return ledger


def tamper(ledger, settings, version: int, edit) -> None:
    """Rewrite one stored row's state bytes straight in the database, as an attacker would."""
    stream = learner_archive_id("L1")
    if settings.is_sqlite:
        with sqlite3.connect(sqlite_path(settings.database_url)) as conn:
            (state,) = conn.execute(
                "SELECT state FROM stored_events WHERE originator_id=? AND originator_version=?",
                (stream.hex, version)).fetchone()
            conn.execute(
                "UPDATE stored_events SET state=? WHERE originator_id=? AND originator_version=?",
                (edit(state), stream.hex, version))
        return
    table = f"{settings.database_schema}.studyledger_events"
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        (state,) = conn.execute(
            f"SELECT state FROM {table} WHERE originator_id=%s AND originator_version=%s",
            (stream, version)).fetchone()
        conn.execute(
            f"UPDATE {table} SET state=%s WHERE originator_id=%s AND originator_version=%s",
            (edit(bytes(state)), stream, version))


def edit_fact(change):
    def edit(state: bytes) -> bytes:
        data = json.loads(state)
        change(data)
        return json.dumps(data).encode()
    return edit


def test_an_untouched_archive_verifies(archive_of_five):
    report = archive_of_five.verify_learner("L1")
    assert (report.links_checked, report.broken) == (5, None)


def test_each_link_hashes_its_fact_onto_the_previous_hash(archive_of_five):
    events = list(archive_of_five.events.get(learner_archive_id("L1")))
    assert events[0].prev_hash == GENESIS_HASH
    for before, after in zip(events, events[1:], strict=False):
        assert after.prev_hash == before.hash == link_hash(before.prev_hash, before.fact)


def test_altered_fact_is_named_as_the_first_broken_link(archive_of_five, store_settings):
    tamper(archive_of_five, store_settings, 3,
           edit_fact(lambda d: d["fact"]["payload"].update(course_hours="20")))
    report = archive_of_five.verify_learner("L1")
    assert (report.broken.version, report.links_checked) == (3, 2)
    assert "hash does not match the stored fact" in report.broken.reason


def test_altered_fact_with_recomputed_hash_breaks_the_next_link(archive_of_five, store_settings):
    def forge(data):
        data["fact"]["payload"]["course_hours"] = "20"
        data["hash"] = link_hash(data["prev_hash"], data["fact"])
    tamper(archive_of_five, store_settings, 3, edit_fact(forge))
    report = archive_of_five.verify_learner("L1")
    assert report.broken.version == 4
    assert "prev_hash" in report.broken.reason


def test_undecodable_row_is_reported_not_crashed_on(archive_of_five, store_settings):
    tamper(archive_of_five, store_settings, 2, lambda state: b"{not json")
    report = archive_of_five.verify_learner("L1")
    assert (report.broken.version, "cannot be decoded" in report.broken.reason) == (2, True)


def test_full_verify_names_only_the_tampered_stream(archive_of_five, store_settings):
    tamper(archive_of_five, store_settings, 5,
           edit_fact(lambda d: d["fact"].update(actor="someone-else")))
    reports = list(archive_of_five.verify_all(page_size=2))
    broken = [(r.label, r.broken.version) for r in reports if r.broken]
    assert broken == [("learner L1", 5)]
    assert len(reports) == 2


def test_v1_stored_event_is_upcast_through_the_real_mapper(archive_of_five):
    """v1 events had no ingest channel; reading one through the store adds 'unknown'."""
    ledger = archive_of_five
    archive = ledger.repository.get(learner_archive_id("L1"))
    archive.append(incoming("study_session.recorded", SESSION | {"course_id": "old"}), "x")
    [pending] = archive.collect_events()
    stored = ledger.mapper.to_stored_event(pending)
    state = json.loads(stored.state)
    assert state.pop("class_version") == 2
    del state["channel"]  # what a v1 event looked like
    v1_row = type(stored)(stored.originator_id, stored.originator_version, stored.topic,
                          json.dumps(state).encode())
    ledger.recorder.insert_events([v1_row])

    fresh = type(ledger)(env=dict(ledger.env))  # a new process reading the store
    events = list(fresh.events.get(learner_archive_id("L1")))
    assert (type(events[-1]), events[-1].channel) == (LearnerArchive.FactRecorded, "unknown")
    assert events[-2].channel == "t"
    assert fresh.verify_learner("L1").broken is None  # the channel is outside the chain
    fresh.close()
