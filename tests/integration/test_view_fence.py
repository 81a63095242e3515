"""The fence behind the runner's lease: a batch is written only over the views it was read
from, so two runners that both believe they hold the lease cannot write over each other."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from infra.bootstrap import build_ledger, build_projector
from infra.settings import Settings
from infra.store.runner_lease import LeaseHeldError
from infra.views.writer import ViewsMovedError, ViewStore
from projections.runner import Projector
from tests.e2e.conftest import NOW, district_facts
from tests.integration.test_projection_stall import sessions


def test_a_batch_read_before_another_runner_wrote_is_refused_and_redone(store_settings):
    ledger = build_ledger(store_settings)
    ledger.record_facts(district_facts() + sessions(0, 10), now=NOW, channel="test")
    first = Projector(ledger, ViewStore(store_settings), batch_size=5)
    second = Projector(ledger, ViewStore(store_settings), batch_size=5)

    after = first.views.position()
    page = ledger.read_log(after, 5)
    assert second.run_once() == len(ledger.recorder.select_notifications(start=1, limit=99))
    with pytest.raises(ViewsMovedError):
        first._apply(page, after)  # read at 0, the views are at 18 now

    ledger.record_facts(sessions(10, 15), now=NOW, channel="test")
    assert first.run_once() == 5  # from where the other runner got to
    live = first.views.dump()
    second.replay()
    assert live == second.views.dump()
    for projector in (first, second):
        projector.views.close()
    ledger.close()


def test_a_replay_is_refused_while_another_runner_holds_the_views(store_settings):
    active, other = build_projector(store_settings), build_projector(store_settings)
    assert active.lease.hold() and not other.lease.hold()
    with pytest.raises(LeaseHeldError, match="stop it before a replay"):
        other.replay()
    active.lease.release()
    assert other.replay() == 0
    for projector in (active, other):
        projector.views.close()
        projector.ledger.close()


def test_the_replay_command_says_why_it_is_refused(tmp_path):
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'replay.db'}")
    active = build_projector(settings)
    assert active.lease.hold()
    refused = subprocess.run([sys.executable, "-m", "infra.cli", "replay"], capture_output=True,
                             text=True, timeout=120, env=os.environ | {
                                 "STUDYLEDGER_DATABASE_URL": settings.database_url})
    assert refused.returncode == 2, refused.stderr
    assert "another projection runner" in refused.stderr and "Traceback" not in refused.stderr
    active.lease.release()
    active.views.close()
    active.ledger.close()
