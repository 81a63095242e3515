"""A long-running process started before its database or broker answers waits for it.

`serve`, `project`, `relay` and `consume` ride out a database or a broker that goes away
while they run. Started while one is away (a stack coming up together, a host rebooting, a
failover), they used to exit at once with "cannot connect", leaving the restart to a
supervisor. They now say once what they wait for, wait with a backoff, and start when it
answers.

A database that answers but refuses (wrong password, no such database or role, no
pg_hba.conf entry), or a broker that refuses, will not change its mind by itself: that still
ends the command at once, with its one-line error.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from kafka.errors import BrokerNotAvailableError, KafkaConnectionError, KafkaTimeoutError

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


def _broker_unreachable(exc: BaseException) -> bool:
    """No broker answered (refused, timed out bootstrapping), as opposed to one refusing."""
    return isinstance(exc, KafkaConnectionError | KafkaTimeoutError | BrokerNotAvailableError)


def waits_out(exc: BaseException) -> bool:
    """Whether a failure to start is one that waiting can cure."""
    chain = _chain(exc)
    if any(refusal in str(e).lower() for e in chain for refusal in _REFUSALS):
        return False
    return any(is_unavailable(e) or _broker_unreachable(e) for e in chain)


def wait_until_answering(build: Callable[[], T], *, stop: threading.Event,
                         log: logging.Logger) -> T | None:
    """`build()` once what it connects to answers; None if `stop` is set while waiting.
    A failure waiting cannot cure is raised. `build` must leave nothing open when it
    fails: it is called again."""
    delay, waiting_since, waiting_for = FIRST_DELAY, 0.0, ""
    while True:
        try:
            built = build()
        except Exception as exc:
            if not waits_out(exc):
                raise
            what = ("the broker" if any(_broker_unreachable(e) for e in _chain(exc))
                    else "the store")
            if what != waiting_for:
                waiting_since = waiting_since or time.monotonic()
                waiting_for = what
                log.warning("%s does not answer (%s); waiting for it", what, one_line(exc))
            if stop.wait(delay):
                return None
            delay = min(delay * 2, MAX_DELAY)
            continue
        if waiting_since:
            log.info("%s answers after %.1f s of waiting; starting", waiting_for,
                     time.monotonic() - waiting_since)
        return built
