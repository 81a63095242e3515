"""A fact the projection runner cannot project: the runner projects everything before it,
stalls there loudly (log, stored state), retries, and resumes once the cause is gone."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
import uuid

import psycopg

from domain.application import StudyLedger
from infra.bootstrap import build_ledger, build_projector
from infra.serve import keep_views_current
from infra.settings import Settings, sqlite_path
from infra.views.writer import ViewStore
from tests.e2e.conftest import NOW, district_facts
from tests.factories import incoming


def sessions(first: int, last: int) -> list:
    return [incoming("study_session.recorded", {
        "course_id": f"C{n}", "course_hours": "1", "required": True, "minutes": 50,
        "progress": "1"}, learner_id="L1", external_id=f"s-{n}") for n in range(first, last)]


def insert_unreadable_row(settings: Settings, ledger: StudyLedger) -> int:
    """A row written straight into the events table, past the application: a real event
    type, but a state no code can decode. Returns its position in the log."""
    topic = ledger.recorder.select_notifications(start=1, limit=1)[0].topic
    row = (str(uuid.uuid4()), 1, topic, b"not an event")
    if settings.is_sqlite:
        with sqlite3.connect(sqlite_path(settings.database_url)) as conn:
            cursor = conn.execute("INSERT INTO stored_events VALUES (?, ?, ?, ?)", row)
            return int(cursor.lastrowid or 0)
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        found = conn.execute(
            f"INSERT INTO {settings.database_schema}.studyledger_events (originator_id, "
            "originator_version, topic, state) VALUES (%s, %s, %s, %s) "
            "RETURNING notification_id", row).fetchone()
        assert found is not None
        return int(found[0])


def delete_row(settings: Settings, position: int) -> None:
    if settings.is_sqlite:
        with sqlite3.connect(sqlite_path(settings.database_url)) as conn:
            conn.execute("DELETE FROM stored_events WHERE rowid = ?", (position,))
        return
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute(f"DELETE FROM {settings.database_schema}.studyledger_events "
                     "WHERE notification_id = %s", (position,))


def wait_for(predicate, seconds: float = 30) -> None:  # noqa: ANN001
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_the_runner_stalls_loudly_at_the_fact_and_resumes_when_it_is_gone(store_settings,
                                                                            caplog):
    settings = store_settings.model_copy(update={"projection_batch_size": 50,
                                                 "projection_retry_max_seconds": 0.5})
    ledger = build_ledger(settings)
    ledger.record_facts(district_facts() + sessions(0, 5), now=NOW, channel="test")
    bad = insert_unreadable_row(settings, ledger)
    ledger.record_facts(sessions(5, 10), now=NOW, channel="test")
    recorded = ledger.recorder.max_notification_id()
    assert recorded == bad + 5

    observer = ViewStore(settings)
    projector = build_projector(settings, ledger)
    stop = threading.Event()
    runner = threading.Thread(target=keep_views_current, args=(projector, stop, 0.05))
    with caplog.at_level(logging.WARNING, logger="studyledger.projections"):
        runner.start()
        try:
            wait_for(lambda: (observer.runner_state() or None) is not None)
            state = observer.runner_state()
            assert state is not None and state.status == "stalled"
            assert state.position == bad and state.error and "Error" in state.error
            assert observer.position() == bad - 1  # every fact before it is projected
            time.sleep(1.5)  # retried meanwhile, still stalled, nothing skipped
            assert observer.position() == bad - 1
            assert "still stalled at position" in caplog.text

            delete_row(settings, bad)  # the cause removed
            wait_for(lambda: observer.position() == recorded, 10)
            assert observer.runner_state().status == "running"  # type: ignore[union-attr]
        finally:
            stop.set()
            runner.join(timeout=30)
    assert f"projection stalled at position {bad}" in caplog.text
    assert f"projection resumed: position {bad} projected" in caplog.text
    live = observer.dump()
    projector.replay()
    assert live == observer.dump()
    observer.close()
    ledger.close()
