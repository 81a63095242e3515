"""Test-only fault injection: STUDYLEDGER_FAULT_KILL_AT="POINT:N" makes the process SIGKILL
itself at the Nth time it reaches the named point, so crash tests kill at an exact step.

SIGKILL, not an exception: nothing in the process gets to clean up, flush or commit, which is
what a power cut or an OOM kill looks like. Unset (the default), every point does nothing.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

from consumers.fault_points import CONSUMER_POINTS, FaultPoint, no_faults
from projections.runner import PROJECT_AFTER_BATCH_COMMIT

# ingest (a JSONL file): a batch's transaction committed, the next not yet begun.
INGEST_AFTER_BATCH_COMMIT = "ingest.after_batch_commit"

KNOWN_POINTS = (*CONSUMER_POINTS, INGEST_AFTER_BATCH_COMMIT, PROJECT_AFTER_BATCH_COMMIT)


def parse_kill_at(value: str) -> tuple[str, int]:
    """"consume.after_store_commit:3" -> ("consume.after_store_commit", 3)."""
    point, _, count = value.rpartition(":")
    if point not in KNOWN_POINTS or not count.isdigit() or int(count) < 1:
        raise ValueError(f"{value!r} is not POINT:N with N >= 1 and POINT one of "
                         f"{', '.join(KNOWN_POINTS)}")
    return point, int(count)


class KillAt:
    """Counts the hits of one point and kills the process at the Nth."""

    def __init__(self, point: str, at_hit: int,
                 kill: Callable[[], None] | None = None) -> None:
        self.point = point
        self.at_hit = at_hit
        self.hits = 0
        self.kill = kill or (lambda: os.kill(os.getpid(), signal.SIGKILL))

    def __call__(self, point: str) -> None:
        if point != self.point:
            return
        self.hits += 1
        if self.hits == self.at_hit:
            self.kill()


def fault_point_from(kill_at: str | None) -> FaultPoint:
    """The fault point the loops get: the setting's killer, or `no_faults` when unset."""
    if not kill_at:
        return no_faults
    return KillAt(*parse_kill_at(kill_at))
