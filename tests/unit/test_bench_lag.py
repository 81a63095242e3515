"""The lag bench's arithmetic: a batch's lag runs from its commit to the first sample of
the views holding it; 'behind' is the most facts committed but not yet in the views."""

from __future__ import annotations

import math
import os
import time

import pytest

from infra.bench.lag import _lag_figures, process_cpu_seconds


def test_each_batch_waits_for_the_first_sample_at_or_past_its_position():
    commits = [(1.0, 10), (2.0, 20)]
    samples = [(0.5, 0), (1.2, 10), (2.1, 10), (2.5, 15), (2.7, 20)]
    figures = _lag_figures(commits, samples, achieved_rate=5000)
    assert figures["max"] == pytest.approx(0.7)
    assert figures["p50"] == pytest.approx((0.2 + 0.7) / 2)
    assert figures["behind"] == 10  # at 2.1 s: 20 committed, 10 projected
    assert figures["rate"] == 5000


def test_a_sample_taken_before_the_commit_does_not_count_for_it():
    figures = _lag_figures([(1.0, 10)], [(0.9, 10), (1.5, 10)], achieved_rate=1)
    assert figures["max"] == pytest.approx(0.5)


def test_a_batch_the_views_never_reached_has_an_endless_lag():
    figures = _lag_figures([(1.0, 10), (2.0, 20)], [(1.1, 10), (3.0, 15)], achieved_rate=1)
    assert math.isinf(figures["max"])
    assert figures["behind"] == 5


def test_a_process_cpu_is_read_from_proc_and_grows_with_work():
    before = process_cpu_seconds(os.getpid())
    assert before is not None and before > 0
    deadline = time.process_time() + 0.3
    while time.process_time() < deadline:  # burn a third of a second of CPU
        pass
    after = process_cpu_seconds(os.getpid())
    assert after is not None and after - before >= 0.2


def test_a_process_that_is_gone_has_no_cpu_to_read():
    assert process_cpu_seconds(2**22 + 12345) is None  # above any kernel's pid limit


def test_a_runner_that_dies_at_start_is_an_error_with_what_it_said(tmp_path):
    import subprocess
    import sys
    import tempfile

    from infra.bench import BenchSetupError
    from infra.bench.lag import _wait_for_runner, _Watcher
    from infra.settings import Settings

    watcher = _Watcher(Settings(database_url=f"sqlite:///{tmp_path}/views.db"))  # not started
    with tempfile.TemporaryFile() as log:
        runner = subprocess.Popen(
            [sys.executable, "-c", "print('error: cannot open the store'); raise SystemExit(2)"],
            stdout=log, stderr=subprocess.STDOUT)
        runner.wait(30)
        with pytest.raises(BenchSetupError) as raised:
            _wait_for_runner(runner, watcher, log)
    assert "exited with 2" in str(raised.value)
    assert "cannot open the store" in str(raised.value)
