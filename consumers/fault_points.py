"""Named points between the steps whose order makes a crash safe, where a test can make the
process die on purpose (fault injection).

The loops call `fault_point(name)` at each point; in production that is `no_faults`, which
does nothing. infra builds the test-only killer from STUDYLEDGER_FAULT_KILL_AT, so that crash
tests kill at a chosen step instead of racing a signal against a fast loop.
"""

from __future__ import annotations

from collections.abc import Callable

FaultPoint = Callable[[str], None]

# consume: store committed, dead letters not yet flushed (the batch will be read again).
CONSUME_AFTER_STORE_COMMIT = "consume.after_store_commit"
# consume: dead letters acknowledged, offsets not yet committed (letters may be sent twice).
CONSUME_AFTER_DEAD_LETTERS_FLUSHED = "consume.after_dead_letters_flushed"
# consume: offsets committed (nothing is read again).
CONSUME_AFTER_OFFSET_COMMIT = "consume.after_offset_commit"
# relay: the broker acknowledged the batch, its position is not yet stored (resent once).
RELAY_AFTER_BROKER_ACK = "relay.after_broker_ack"
# relay: the position is stored (nothing is resent).
RELAY_AFTER_POSITION_STORED = "relay.after_position_stored"

CONSUMER_POINTS = (CONSUME_AFTER_STORE_COMMIT, CONSUME_AFTER_DEAD_LETTERS_FLUSHED,
                   CONSUME_AFTER_OFFSET_COMMIT, RELAY_AFTER_BROKER_ACK,
                   RELAY_AFTER_POSITION_STORED)


def no_faults(point: str) -> None:
    """Every point passes: the production default."""
