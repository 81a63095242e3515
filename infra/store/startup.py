"""A long-running process started before its database answers waits for it.

`project`, `relay` and `consume` ride out a database that goes away while they run. Started
while it is away (a stack coming up together, a host rebooting, a failover), they used to
exit at once with "cannot connect", leaving the restart to a supervisor. They now say once
that they wait, wait with a backoff, and start when the store answers.

A database that answers but refuses (wrong password, no such database or role, no
pg_hba.conf entry) will not change its mind by itself: that still ends the command at once,
with its one-line error.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from domain.errors import one_line
from infra.store.errors import is_unavailable

T = TypeVar("T")

# What a database that answers says when it refuses this process for good.
_REFUSALS = ("password authentication failed", "does not exist", "no pg_hba.conf entry",
             "permission denied")
FIRST_DELAY, MAX_DELAY = 0.25, 5.0


def _chain(exc: BaseException) -> list[BaseException]:
    found: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in found:
        found.append(current)
        current = current.__cause__
    return found


def waits_out(exc: BaseException) -> bool:
    """Whether a failure to open the store is one that waiting can cure."""
    chain = _chain(exc)
    if any(refusal in str(e).lower() for e in chain for refusal in _REFUSALS):
        return False
    return any(is_unavailable(e) for e in chain)


def wait_for_store(build: Callable[[], T], *, stop: threading.Event,
                   log: logging.Logger) -> T | None:
    """`build()` once the store answers; None if `stop` is set while waiting. A failure
    waiting cannot cure is raised."""
    delay, waiting_since = FIRST_DELAY, 0.0
    while True:
        try:
            built = build()
        except Exception as exc:
            if not waits_out(exc):
                raise
            if not waiting_since:
                waiting_since = time.monotonic()
                log.warning("the store does not answer (%s); waiting for it", one_line(exc))
            if stop.wait(delay):
                return None
            delay = min(delay * 2, MAX_DELAY)
            continue
        if waiting_since:
            log.info("the store answers after %.1f s of waiting; starting",
                     time.monotonic() - waiting_since)
        return built
