"""Kafka messages validated in worker processes while the consumer stores the batch before.

The consumer loop (consumers.ingest_loop) polls the messages already fetched after the
batch in hand and hands them over before storing it; a worker validates them meanwhile.
Offloading alone would gain nothing: the loop would wait for each batch's validation
before storing it. A valid fact comes back in its wire form, a refusal as (code, reason,
field).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

from consumers.ingest_loop import DeadLetter, InboundMessage, Validated, validate_value
from domain.facts import IncomingFact, from_wire, to_wire
from infra.validation_pool import ValidationPool


class PooledMessageValidation:
    runs_beside = True

    def __init__(self, workers: int) -> None:
        self.pool = ValidationPool(workers, preload=__name__)

    def submit(self, messages: Sequence[InboundMessage]) -> Validated:
        future = self.pool.submit(_validate_values, [message.value for message in messages])
        return lambda: _results(messages, future)

    def close(self) -> None:
        self.pool.close(wait=False)


def _results(messages: Sequence[InboundMessage], future: Future[list[Any]]
             ) -> list[IncomingFact | DeadLetter]:
    results: list[IncomingFact | DeadLetter] = []
    for message, (kind, *item) in zip(messages, future.result(), strict=True):
        results.append(from_wire(item[0]) if kind == "fact" else DeadLetter(message, *item))
    return results


def _validate_values(values: list[bytes | None]) -> list[tuple[Any, ...]]:
    """In a worker: each value as ("fact", wire form) or ("refused", code, reason, field)."""
    validated: list[tuple[Any, ...]] = []
    for value in values:
        checked = validate_value(value)
        if isinstance(checked, IncomingFact):
            validated.append(("fact", to_wire(checked)))
        else:
            validated.append(("refused", *checked))
    return validated
