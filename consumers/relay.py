"""The outbound relay: every recorded fact, in log order, to downstream subscribers.

Per batch: read the next notifications after the stored position, publish each (key = the
learner id, event id in a header), wait for every ack, and only then store the new position.
A crash after publishing but before storing resends that one batch on restart, never more,
and never skips: downstream must treat the event id as the idempotency key.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any, Protocol

from consumers.fault_points import (
    RELAY_AFTER_BROKER_ACK,
    RELAY_AFTER_POSITION_STORED,
    FaultPoint,
    no_faults,
)
from domain.application import StudyLedger
from domain.errors import StoreUnavailableError

log = logging.getLogger("studyledger.relay")

# While the store or the broker is away the relay tries the same batch again after a wait that
# doubles from the first to the last: soon after a short restart, without hammering a long
# outage.
FIRST_RETRY_SECONDS = 0.25
MAX_RETRY_SECONDS = 5.0


class PublishFailedError(RuntimeError):
    """The broker did not take or acknowledge what was published (down, restarting,
    unreachable): the batch is published again once it answers."""


class Publisher(Protocol):
    def publish(self, key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> None: ...

    def flush(self) -> None:
        """Block until everything published is acknowledged; raise PublishFailedError if
        anything was not."""


class PositionStore(Protocol):
    def position(self) -> int: ...

    def save(self, position: int) -> None: ...


def recorded_record(position: int, event: Any) -> dict[str, Any]:
    """One recorded fact with where it sits: the relay's message value, and a line of
    `studyledger export` (which `ingest` takes back)."""
    return {"event_id": str(event.event_id), "position": position,
            "recorded_at": event.timestamp.isoformat(), "hash": event.hash,
            "prev_hash": event.prev_hash, "fact": event.fact}


def recorded_message(position: int, event: Any) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """(key, value, headers) of one recorded fact as downstream sees it."""
    fact = event.fact
    key = fact["learner_id"] or f"org:{fact['payload']['org_id']}"
    value = recorded_record(position, event)
    headers = [("event_id", str(event.event_id).encode()), ("type", fact["type"].encode())]
    return key.encode(), json.dumps(value, ensure_ascii=False).encode(), headers


class RelayLoop:
    def __init__(self, ledger: StudyLedger, publisher: Publisher, positions: PositionStore,
                 *, batch_size: int = 1000, fault_point: FaultPoint = no_faults) -> None:
        self.ledger = ledger
        self.publisher = publisher
        self.positions = positions
        self.batch_size = batch_size
        self.fault_point = fault_point

    def run_batch(self) -> int:
        """Publish the next batch; returns how many facts it held (0: caught up)."""
        page = self.ledger.read_log(self.positions.position(), self.batch_size)
        if not page:
            return 0
        for logged in page:
            self.publisher.publish(*recorded_message(logged.position, logged))
        self.publisher.flush()
        self.fault_point(RELAY_AFTER_BROKER_ACK)
        self.positions.save(page[-1].position)
        self.fault_point(RELAY_AFTER_POSITION_STORED)
        return len(page)

    def lag(self) -> int:
        return self.ledger.last_position() - self.positions.position()


class RelayRunner:
    """One step of the long-running relay, and how it meets a store or a broker that goes
    away.

    Either unavailable (down, restarting, locked): wait, then try the same batch again, until
    it answers. Nothing is skipped, since the position moves only after the broker's acks. A
    batch published but not confirmed when either went away is published again: downstream
    treats the event id as the idempotency key. A process that exited instead would only
    move the wait to whatever restarts it.
    """

    def __init__(self, loop: RelayLoop, stop: threading.Event) -> None:
        self.loop, self.stop = loop, stop
        self.away: str | None = None  # "store" or "broker" while waiting for it
        self.wait = 0.0

    def step(self) -> int | None:
        """One batch; how many facts it published, or None after waiting for the store or
        the broker."""
        try:
            published = self.loop.run_batch()
        except StoreUnavailableError as exc:
            self._wait_for("store", exc)
            return None
        except PublishFailedError as exc:
            self._wait_for("broker", exc)
            return None
        if self.away is not None:
            log.warning("%s back; the relay goes on", self.away)
            self.away, self.wait = None, 0.0
        return published

    def _wait_for(self, what: str, exc: Exception) -> None:
        if self.away != what:
            log.warning("%s unavailable; the relay waits for it: %s", what, exc)
            self.away, self.wait = what, 0.0
        self.wait = min(max(self.wait * 2, FIRST_RETRY_SECONDS), MAX_RETRY_SECONDS)
        self.stop.wait(self.wait)
