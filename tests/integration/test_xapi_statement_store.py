"""xAPI statements on real SQLite and PostgreSQL: stored as immutable facts in their own log,
queried from tables that `replay` rebuilds to the same answers, exported in log order."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime

import pytest

from api.xapi.backend import StatementQuery
from domain.xapi.application import StatementConflictError
from domain.xapi.statement_fact import XapiStatement, statement_stream_id
from infra.bootstrap import build_ledger, build_lrs
from infra.settings import Settings
from infra.xapi.lrs import SqlLrs
from infra.xapi.maintenance import export_statements

AUTHORITY = {"objectType": "Agent", "account": {"homePage": "http://lrs/", "name": "k1"}}
VOIDED = "http://adlnet.gov/expapi/verbs/voided"


def statement(n: int, **extra):
    return {"id": str(uuid.UUID(int=n)),
            "actor": {"mbox": f"mailto:learner{n % 3}@example.com"},
            "verb": {"id": "http://adlnet.gov/expapi/verbs/completed"},
            "object": {"id": f"https://lms.example/course/{n % 2}"}, **extra}


def everything(lrs: SqlLrs, **filters) -> list[dict]:
    page = lrs.query(StatementQuery(orgs=["A"], limit=100, **filters))
    return [json.loads(body) for body in page.statements]


@pytest.fixture
def lrs(store_settings: Settings):
    store = build_lrs(store_settings, clock=lambda: datetime(2026, 11, 23, 9, 0, tzinfo=UTC))
    yield store
    store.close()


def test_statements_are_facts_in_their_own_log_and_replay_rebuilds_the_same_tables(
        lrs, store_settings):
    lrs.accept([statement(n) for n in range(1, 7)], authority=AUTHORITY, org_id="A")
    void = {"id": str(uuid.UUID(int=99)), "actor": {"mbox": "mailto:admin@example.com"},
            "verb": {"id": VOIDED}, "object": {"objectType": "StatementRef",
                                               "id": str(uuid.UUID(int=2))}}
    lrs.accept([void], authority=AUTHORITY, org_id="A")

    # Facts: one aggregate per statement in the xAPI log, none in the learner-fact log.
    fact = lrs.app.repository.get(statement_stream_id(str(uuid.UUID(int=2))))
    assert isinstance(fact, XapiStatement) and fact.version == 1
    assert lrs.app.recorder.max_notification_id() == 7
    ledger = build_ledger(store_settings)
    assert not ledger.recorder.max_notification_id()
    ledger.close()
    # The voided statement is a fact still; only its query row is marked.
    assert json.loads(fact.statement)["id"] == str(uuid.UUID(int=2))
    assert lrs.statement(str(uuid.UUID(int=2)), ["A"], voided=True) is not None
    assert lrs.statement(str(uuid.UUID(int=2)), ["A"], voided=False) is None

    before = everything(lrs)
    by_agent = everything(lrs, agent="mbox:mailto:learner1@example.com")
    assert [s["id"] for s in by_agent] == [str(uuid.UUID(int=n)) for n in (4, 1)]
    assert len(before) == 6  # 5 statements not voided + the voiding one, newest first
    assert before[0]["id"] == void["id"]

    assert lrs.replay() == 7
    assert everything(lrs) == before
    assert everything(lrs, agent="mbox:mailto:learner1@example.com") == by_agent
    assert lrs.statement(str(uuid.UUID(int=2)), ["A"], voided=True) is not None


def test_a_resend_is_a_no_op_and_other_content_under_the_same_id_a_conflict(lrs):
    first = lrs.accept([statement(1)], authority=AUTHORITY, org_id="A")
    assert lrs.accept([statement(1)], authority=AUTHORITY, org_id="A") == first
    with pytest.raises(StatementConflictError):
        lrs.accept([statement(2), statement(1, result={"success": True})],
                   authority=AUTHORITY, org_id="A")
    # All or nothing: statement 2 of the refused batch was not stored either.
    assert [s["id"] for s in everything(lrs)] == first
    assert lrs.app.recorder.max_notification_id() == 1


def test_another_org_does_not_see_the_statements(lrs):
    lrs.accept([statement(1)], authority=AUTHORITY, org_id="A")
    assert lrs.query(StatementQuery(orgs=["B"])).statements == []
    assert lrs.statement(str(uuid.UUID(int=1)), ["B"], voided=False) is None


def test_export_writes_every_statement_in_log_order_as_the_lrs_returns_it(lrs, store_settings):
    lrs.accept([statement(n) for n in (1, 2, 3)], authority=AUTHORITY, org_id="A")
    out = io.StringIO()
    assert export_statements(store_settings, out) == 3
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["position"] for line in lines] == [1, 2, 3]
    assert lines[0]["xapi_statement"]["authority"] == AUTHORITY
    assert lines[0]["xapi_statement"]["stored"] == "2026-11-23T09:00:00.000Z"


def test_the_replay_command_rebuilds_the_xapi_tables_too(tmp_path):
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'ledger.db'}")
    store = build_lrs(settings)
    store.accept([statement(1), statement(2)], authority=AUTHORITY, org_id="A")
    store.tables.reset()
    store.close()
    env = os.environ | {"STUDYLEDGER_DATABASE_URL": settings.database_url}
    done = subprocess.run([sys.executable, "-m", "infra.cli", "replay"], capture_output=True,
                          text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "rebuilt the xAPI query tables from 2 statements; position 2" in done.stdout
    store = build_lrs(settings)
    assert len(everything(store)) == 2
    store.close()


def test_consistent_through_stays_before_a_write_still_in_flight(store_settings):
    times = iter([datetime(2026, 11, 23, 9, 0, 0, tzinfo=UTC),
                  datetime(2026, 11, 23, 9, 0, 5, tzinfo=UTC)])
    lrs = build_lrs(store_settings, clock=lambda: next(times))
    seen = []
    original = lrs.app.accept

    def slow_accept(*args, **kwargs):  # another request asks while this write is in flight
        seen.append(lrs.consistent_through())
        return original(*args, **kwargs)

    lrs.app.accept = slow_accept
    try:
        lrs.accept([statement(1)], authority=AUTHORITY, org_id="A")
    finally:
        lrs.close()
    assert seen == [datetime(2026, 11, 23, 8, 59, 59, 999000, tzinfo=UTC)]


def test_a_resend_is_judged_on_the_stored_fact_even_when_the_query_tables_are_behind(lrs):
    lrs.accept([statement(1)], authority=AUTHORITY, org_id="A")
    lrs.tables.reset()  # as after a crash between the save and the projection
    assert lrs.accept([statement(1)], authority=AUTHORITY, org_id="A") == [
        str(uuid.UUID(int=1))]
    with pytest.raises(StatementConflictError):
        lrs.accept([statement(1, result={"success": True})], authority=AUTHORITY,
                   org_id="A")
    assert lrs.app.recorder.max_notification_id() == 1
