"""The loop consume and relay share: when it stops, when it waits, when it reports."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

from consumers.running import run_until_stopped


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class RecordingStop(threading.Event):
    """A stop event whose waits advance the fake clock instead of sleeping."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self.clock = clock
        self.waits: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout or 0.0)
        self.clock.now += timeout or 0.0
        return self.is_set()


def steps(results: list[int | None], clock: FakeClock, seconds_each: float = 1.0
          ) -> Callable[[], int | None]:
    pending: Iterator[int | None] = iter(results)

    def step() -> int | None:
        clock.now += seconds_each
        return next(pending)

    return step


def test_a_set_stop_ends_the_loop_after_the_step_in_hand():
    clock = FakeClock()
    stop = RecordingStop(clock)
    handled: list[int] = []

    def step() -> int:
        handled.append(1)
        stop.set()  # a signal arrives mid-batch
        return 5

    assert run_until_stopped(step, stop, clock=clock) == "stopped"
    assert handled == [1]


def test_idle_long_enough_ends_the_loop_and_work_restarts_the_idle_clock():
    clock = FakeClock()
    stop = RecordingStop(clock)
    step = steps([0, 0, 3, 0, 0, 0, 0], clock)
    assert run_until_stopped(step, stop, idle_seconds=3, clock=clock) == "idle"
    assert clock.now == 6  # two idle steps, a busy one, then three idle seconds


def test_a_step_that_could_not_look_yet_keeps_the_idle_clock_from_running():
    clock = FakeClock()
    stop = RecordingStop(clock)
    step = steps([None, None, None, 0, 0], clock)  # no partitions yet, then caught up
    assert run_until_stopped(step, stop, idle_seconds=2, clock=clock) == "idle"
    assert clock.now == 5


def test_idle_zero_stops_at_the_first_step_that_finds_nothing():
    clock = FakeClock()
    stop = RecordingStop(clock)
    step = steps([7, 7, 0, 9], clock)
    assert run_until_stopped(step, stop, idle_seconds=0, clock=clock) == "idle"
    assert clock.now == 3


def test_only_a_caught_up_step_waits_the_poll_interval():
    clock = FakeClock()
    stop = RecordingStop(clock)
    results: list[int | None] = [4, 0, None, 0]

    def step() -> int | None:
        if not results:
            stop.set()
            return 1
        return results.pop(0)

    run_until_stopped(step, stop, poll_seconds=0.5, clock=clock)
    assert stop.waits == [0.5, 0.5]


def test_progress_is_reported_every_report_seconds():
    clock = FakeClock()
    stop = RecordingStop(clock)
    reported: list[float] = []
    step = steps([1] * 10 + [0], clock)
    run_until_stopped(step, stop, lambda: reported.append(clock.now), report_seconds=3,
                      idle_seconds=0, clock=clock)
    assert reported == [3, 6, 9]
