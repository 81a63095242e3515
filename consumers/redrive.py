"""Send dead-lettered Kafka messages through the write path again, once their cause is
fixed (an upgrade that accepts them, a prerequisite that arrived late, a corrected rule).

Idempotent: a message whose fact is already recorded answers duplicate, one still waiting
for a prerequisite is parked again. The dead-letter topic is a log and is read whole each
time; nothing is published back to it, so a message still refused is reported, not copied.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from consumers.ingest_loop import DeadLetter, InboundMessage, validate_message
from domain.application import StudyLedger
from domain.facts import IncomingFact


@dataclass
class TopicRedriveReport:
    counts: dict[str, int] = field(default_factory=dict)
    still_refused: list[DeadLetter] = field(default_factory=list)

    def add(self, status: str) -> None:
        self.counts[status] = self.counts.get(status, 0) + 1


def redrive_messages(ledger: StudyLedger, messages: Iterable[InboundMessage], *,
                     clock: Callable[[], datetime], channel: str = "kafka",
                     batch_size: int = 1000) -> TopicRedriveReport:
    report = TopicRedriveReport()
    batch: list[tuple[InboundMessage, IncomingFact]] = []

    def flush() -> None:
        origins = [json.dumps({"topic": m.topic, "partition": m.partition, "offset": m.offset,
                               "redriven": True}) for m, _ in batch]
        results = ledger.record_facts([fact for _, fact in batch], now=clock(),
                                      channel=channel, origins=origins)
        for (message, _), result in zip(batch, results, strict=True):
            report.add(result.status)
            if result.status not in ("stored", "duplicate", "parked") and result.error:
                report.still_refused.append(DeadLetter(
                    message, result.error.code, result.error.message, result.error.field))
        batch.clear()

    for message in messages:
        checked = validate_message(message)
        if isinstance(checked, DeadLetter):
            report.add("invalid")
            report.still_refused.append(checked)
            continue
        batch.append((message, checked))
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    return report
