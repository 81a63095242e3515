"""Kafka ingestion as a loop over a message source, independent of the Kafka client.

Per batch, in this order (a crash between any two steps loses nothing; at worst a batch is
read again, and idempotency turns its facts into duplicates):
1. poll a batch; validate every message with the same envelope models as HTTP;
2. write the valid facts through the batched application path; while the store does not
   answer, wait (backoff up to 5 s) with the batch in hand and carry on when it is back (or,
   with a retry limit set, give up loudly with the offsets uncommitted);
   a fact whose prerequisite is not recorded yet (its org or learner on another partition,
   a review before its submission) is parked in the store in that same transaction;
3. send every invalid or rejected message to the dead-letter topic, and with them every
   parked fact that waited past the park timeout, and wait for the acks; while the broker
   does not take them, wait and send them again, the batch in hand;
4. only then commit the offsets past the batch.
A poison message never blocks its partition: it is dead-lettered and committed past.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, TypeVar

from eventsourcing.persistence import PersistenceError
from pydantic import ValidationError

from consumers.fault_points import (
    CONSUME_AFTER_DEAD_LETTERS_FLUSHED,
    CONSUME_AFTER_OFFSET_COMMIT,
    CONSUME_AFTER_STORE_COMMIT,
    FaultPoint,
    no_faults,
)
from consumers.relay import PublishFailedError
from domain.application import RecordResult, StudyLedger
from domain.facts import (
    IncomingFact,
    decode_fact_json,
    describe_problems,
    fact_problems,
    parse_fact,
)
from domain.gc_pauses import fewer_gc_pauses
from domain.parking import DeadLetterRecord

log = logging.getLogger("studyledger.consume")
T = TypeVar("T")


@dataclass(frozen=True)
class InboundMessage:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True)
class DeadLetter:
    message: InboundMessage
    code: str
    reason: str
    field: str | None = None


class MessageSource(Protocol):
    def poll(self, wait: bool = True) -> list[InboundMessage]:
        """The next messages; with wait=False only those already fetched (maybe none)."""

    def commit(self, next_offsets: dict[tuple[str, int], int]) -> None: ...

    def lag(self) -> int | None: ...


class DeadLetterSink(Protocol):
    def send(self, letter: DeadLetter) -> None: ...

    def flush(self) -> None:
        """Block until every letter sent is acknowledged; PublishFailedError if any was
        not (and from send, if the broker cannot be reached)."""


class StoppedWaitingError(RuntimeError):
    """Told to stop while waiting for the broker; the batch's offsets were left uncommitted."""


class StoreUnavailableError(RuntimeError):
    """The store kept failing after every retry allowed, or the loop was told to stop while
    waiting for it; offsets were left uncommitted."""


@dataclass
class IngestStats:
    messages: int = 0
    stored: int = 0
    duplicate: int = 0
    parked: int = 0
    dead_lettered: int = 0
    started: float = field(default_factory=time.monotonic)

    def rate(self) -> float:
        return self.messages / max(time.monotonic() - self.started, 1e-9)


# Why a message was refused before it reached the store: (code, reason, field).
Refusal = tuple[str, str, str | None]


def validate_value(value: bytes | None) -> IncomingFact | Refusal:
    """A message's value as a fact, or why it is not one."""
    if value is None:
        return "empty_message", "the message has no value", None
    try:
        data = decode_fact_json(value)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return "malformed_json", f"malformed JSON: {exc}", None
    try:
        return parse_fact(data)
    except ValidationError as exc:
        problems = fact_problems(exc)
        return "invalid_fact", describe_problems(problems, limit=5), problems[0][0]


def validate_message(message: InboundMessage) -> IncomingFact | DeadLetter:
    checked = validate_value(message.value)
    return checked if isinstance(checked, IncomingFact) else DeadLetter(message, *checked)


Validated = Callable[[], list[IncomingFact | DeadLetter]]


class MessageValidation(Protocol):
    """Validates a polled batch. `runs_beside`: the work proceeds while the loop stores the
    batch before, so the loop polls the next batch ahead and hands it over first."""

    runs_beside: bool

    def submit(self, messages: Sequence[InboundMessage]) -> Validated:
        """Start validating; the callable returns one result per message, in order."""


class InlineValidation:
    """In the loop's own thread, when the results are asked for."""

    runs_beside = False

    def submit(self, messages: Sequence[InboundMessage]) -> Validated:
        return lambda: [validate_message(message) for message in messages]


class IngestLoop:
    # retries=0: wait for the store as long as it takes. A consumer that exits instead only
    # moves the wait to whatever restarts it, and rebalances the group on each exit.
    def __init__(self, ledger: StudyLedger, source: MessageSource, dead_letters: DeadLetterSink,
                 *, clock: Callable[[], datetime], retries: int = 0,
                 backoff_seconds: float = 0.5, max_backoff_seconds: float = 5.0,
                 sleep: Callable[[float], object] = time.sleep,
                 stopping: Callable[[], bool] = lambda: False,
                 channel: str = "kafka", fault_point: FaultPoint = no_faults,
                 validation: MessageValidation | None = None) -> None:
        self.ledger = ledger
        self.validation = validation or InlineValidation()
        # A batch polled, and handed to validation, while the batch before was stored.
        self._ahead: tuple[list[InboundMessage], Validated] | None = None
        self.source = source
        self.dead_letters = dead_letters
        self.clock = clock
        self.retries = retries
        self.backoff_seconds = backoff_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self.sleep = sleep
        self.stopping = stopping
        self.channel = channel
        self.fault_point = fault_point
        self.stats = IngestStats()
        self._last_tended = 0.0

    def run_batch(self) -> int:
        """Poll and fully process one batch; returns how many messages it held.

        When validation runs beside the loop, the messages already fetched after this batch
        are handed to it before this batch is stored. Their offsets are committed only after
        they are processed in turn, so a crash meanwhile loses nothing: they are read again.
        """
        if self._ahead is not None:
            messages, validated = self._ahead
            self._ahead = None
        else:
            messages = self.source.poll()
            if not messages:
                self._tend_parked_when_idle()
                return 0
            validated = self.validation.submit(messages)
        if self.validation.runs_beside:
            following = self.source.poll(wait=False)
            if following:
                self._ahead = (following, self.validation.submit(following))
        letters: list[DeadLetter] = []
        valid: list[tuple[InboundMessage, IncomingFact]] = []
        with fewer_gc_pauses():  # record_facts below has its own
            for message, checked in zip(messages, validated(), strict=True):
                if isinstance(checked, DeadLetter):
                    letters.append(checked)
                else:
                    valid.append((message, checked))
        if valid:
            results = self._record([fact for _, fact in valid],
                                   [_origin(message) for message, _ in valid])
            for (message, _), result in zip(valid, results, strict=True):
                if result.status == "parked":
                    self.stats.parked += 1  # kept in the store; released when ready
                elif result.error is not None:
                    letters.append(DeadLetter(message, result.error.code, result.error.message,
                                              result.error.field))
                elif result.status == "stored":
                    self.stats.stored += 1
                else:
                    self.stats.duplicate += 1
        self.fault_point(CONSUME_AFTER_STORE_COMMIT)
        given_up = self._store(self._parked_given_up)
        letters += [letter for _, letter in given_up]
        self._publish_letters(letters)
        self._store(lambda: self.ledger.mark_dead_letters_published([i for i, _ in given_up]))
        self.fault_point(CONSUME_AFTER_DEAD_LETTERS_FLUSHED)
        self.source.commit(_next_offsets(messages))
        self.fault_point(CONSUME_AFTER_OFFSET_COMMIT)
        self.stats.messages += len(messages)
        self.stats.dead_lettered += len(letters)
        return len(messages)

    def _parked_given_up(self) -> list[tuple[int, DeadLetter]]:
        """Facts this channel parked that waited past the timeout (or were refused when
        released), as dead letters not yet published."""
        records = self.ledger.unpublished_dead_letters(self.channel)
        return [(record.id, _letter_of(record)) for record in records]

    def _tend_parked_when_idle(self) -> None:
        """With no traffic, still give up on facts parked too long (at most once a second)."""
        if time.monotonic() - self._last_tended < 1:
            return
        self._last_tended = time.monotonic()
        try:
            self.ledger.expire_parked(self.clock())
            given_up = self._parked_given_up()
        except PersistenceError as exc:
            log.warning("store error while idle (tried again in a second): %s", exc)
            return
        if given_up:
            self._publish_letters([letter for _, letter in given_up])
            self._store(lambda: self.ledger.mark_dead_letters_published(
                [i for i, _ in given_up]))
            self.stats.dead_lettered += len(given_up)

    def _publish_letters(self, letters: Sequence[DeadLetter]) -> None:
        """Send dead letters and wait for the broker's acks. While the broker does not take
        them, wait (backoff as for the store) and send them all again: the batch's offsets
        stay uncommitted meanwhile, so nothing is lost, and a letter sent twice is a
        duplicate on the dead-letter topic, as after a restart."""
        delay, waiting = self.backoff_seconds, False
        while letters:
            try:
                for letter in letters:
                    self.dead_letters.send(letter)
                self.dead_letters.flush()
            except PublishFailedError as exc:
                if self.stopping():
                    raise StoppedWaitingError(
                        "stopped while waiting for the broker to take dead letters; the "
                        "offsets are not committed, so the batch will be read again") from exc
                if not waiting:
                    log.warning("the broker does not take dead letters; consume waits for "
                                "it, the batch in hand: %s", exc)
                    waiting = True
                self.sleep(delay)
                delay = min(delay * 2, self.max_backoff_seconds)
                continue
            if waiting:
                log.warning("the broker takes dead letters again; consume goes on")
            return

    def _record(self, facts: Sequence[IncomingFact], origins: Sequence[str]
                ) -> list[RecordResult]:
        return self._store(lambda: self.ledger.record_facts(
            facts, now=self.clock(), channel=self.channel, origins=origins))

    def _store(self, action: Callable[[], T]) -> T:
        """`action()`, tried again with backoff while the store fails, the batch in hand
        (its offsets uncommitted) all the while."""
        delay = self.backoff_seconds
        attempt = 0
        while True:
            attempt += 1
            try:
                return action()
            except PersistenceError as exc:
                if attempt == self.retries or self.stopping():
                    why = "stopping" if self.stopping() else "giving up"
                    raise StoreUnavailableError(
                        f"the store failed {attempt} times, last: {exc}; {why} with the "
                        "offsets not committed, so the batch will be read again") from exc
                limit = f" of {self.retries}" if self.retries else ""
                log.warning("store error (attempt %d%s), retrying in %.1f s: %s",
                            attempt, limit, delay, exc)
                self.sleep(delay)
                delay = min(delay * 2, self.max_backoff_seconds)


def _origin(message: InboundMessage) -> str:
    return json.dumps({"topic": message.topic, "partition": message.partition,
                       "offset": message.offset,
                       "key": message.key.decode("utf-8", "replace") if message.key else None})


def _letter_of(record: DeadLetterRecord) -> DeadLetter:
    origin = json.loads(record.fact.origin or "{}")
    key = origin.get("key")
    message = InboundMessage(origin.get("topic", ""), origin.get("partition", -1),
                             origin.get("offset", -1), key.encode() if key else None,
                             record.fact.fact_text.encode())
    return DeadLetter(message, record.fact.code, record.fact.reason, record.fact.field)


def _next_offsets(messages: Sequence[InboundMessage]) -> dict[tuple[str, int], int]:
    offsets: dict[tuple[str, int], int] = {}
    for message in messages:
        key = (message.topic, message.partition)
        offsets[key] = max(offsets.get(key, 0), message.offset + 1)
    return offsets
