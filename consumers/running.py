"""The one loop the long-running workers share: step, report now and then, stop when told.

`consume`, `relay` and `project` differ only in their step; how they wait when idle, report
progress and stop (a signal, or idle long enough) is written once, here.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Literal

Step = Callable[[], int | None]
Ended = Literal["stopped", "idle"]


def run_until_stopped(step: Step, stop: threading.Event, report: Callable[[], None] | None = None,
                      *, report_seconds: float = float("inf"), poll_seconds: float = 0.0,
                      idle_seconds: float | None = None,
                      clock: Callable[[], float] = time.monotonic) -> Ended:
    """Run `step` until `stop` is set ("stopped") or, with `idle_seconds`, until steps found
    nothing to do for that long ("idle"; 0: the first time one finds nothing).

    A step returns how many items it handled: 0 means caught up (wait `poll_seconds`, count
    towards idle); None means it could not look yet and has waited itself (a consumer with
    no partitions, a runner standing by), which keeps the idle clock from running.
    `report` is called every `report_seconds`; the batch in hand always finishes first.
    """
    idle_since = last_report = clock()
    while not stop.is_set():
        handled = step()
        now = clock()
        if handled != 0:
            idle_since = now
        elif idle_seconds is not None and now - idle_since >= idle_seconds:
            return "idle"
        if report is not None and now - last_report >= report_seconds:
            report()
            last_report = now
        if handled == 0 and poll_seconds > 0:
            stop.wait(poll_seconds)
    return "stopped"
