"""How the long-running relay meets a store or a broker that goes away: it waits, with a
backoff, and tries the same batch again; any other failure is not waited on."""

from __future__ import annotations

import logging
import threading

import pytest

from consumers.relay import (
    FIRST_RETRY_SECONDS,
    MAX_RETRY_SECONDS,
    PublishFailedError,
    RelayRunner,
)
from domain.errors import StoreUnavailableError


class Batches:
    """A relay loop whose batches fail or publish as scripted."""

    def __init__(self, *outcomes: int | Exception) -> None:
        self.outcomes = list(outcomes)
        self.tries = 0

    def run_batch(self) -> int:
        self.tries += 1
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


class Waits(threading.Event):
    """A stop event that is never set and records how long each wait would have been."""

    def __init__(self) -> None:
        super().__init__()
        self.seconds: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.seconds.append(timeout or 0.0)
        return False


def test_the_relay_waits_out_the_store_and_tries_the_batch_again(caplog):
    down = StoreUnavailableError("connection refused")
    batches, stop = Batches(down, down, down, 100, 0), Waits()
    runner = RelayRunner(batches, stop)  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, logger="studyledger.relay"):
        steps = [runner.step() for _ in range(5)]
    assert steps == [None, None, None, 100, 0]  # None: waited, not caught up
    assert stop.seconds == [FIRST_RETRY_SECONDS, FIRST_RETRY_SECONDS * 2,
                            FIRST_RETRY_SECONDS * 4]
    said = [record.getMessage() for record in caplog.records]
    assert said == ["store unavailable; the relay waits for it: connection refused",
                    "store back; the relay goes on"]  # once per outage, not per try


def test_the_wait_grows_to_its_limit_and_starts_small_after_the_next_outage():
    down = StoreUnavailableError("locked")
    batches, stop = Batches(*[down] * 12, 5, down), Waits()
    runner = RelayRunner(batches, stop)  # type: ignore[arg-type]
    for _ in range(14):
        runner.step()
    assert max(stop.seconds) == MAX_RETRY_SECONDS
    assert stop.seconds[-2] == MAX_RETRY_SECONDS
    assert stop.seconds[-1] == FIRST_RETRY_SECONDS  # a new outage after the store came back


def test_a_failure_that_is_not_the_store_is_not_waited_on():
    batches, stop = Batches(ValueError("a bug")), Waits()
    with pytest.raises(ValueError, match="a bug"):
        RelayRunner(batches, stop).step()  # type: ignore[arg-type]
    assert stop.seconds == []


def test_the_relay_waits_out_the_broker_and_says_which_one_it_waits_for(caplog):
    store, broker = StoreUnavailableError("refused"), PublishFailedError("no acks")
    batches, stop = Batches(broker, broker, store, 7), Waits()
    runner = RelayRunner(batches, stop)  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, logger="studyledger.relay"):
        steps = [runner.step() for _ in range(4)]
    assert steps == [None, None, None, 7]
    # Each outage's wait starts small, whichever of the two went away.
    assert stop.seconds == [FIRST_RETRY_SECONDS, FIRST_RETRY_SECONDS * 2, FIRST_RETRY_SECONDS]
    assert [record.getMessage() for record in caplog.records] == [
        "broker unavailable; the relay waits for it: no acks",
        "store unavailable; the relay waits for it: refused",
        "store back; the relay goes on"]
