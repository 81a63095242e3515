"""The consumer loop's ordering and retry policy, with in-memory stand-ins for Kafka and the
store (the real broker and stores are exercised in tests/integration/kafka)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import pytest
from eventsourcing.persistence import OperationalError

from consumers.ingest_loop import (
    InboundMessage,
    IngestLoop,
    StoppedWaitingError,
    StoreUnavailableError,
    validate_message,
)
from consumers.relay import PublishFailedError
from domain.application import RecordResult
from tests.factories import REGISTRATION, envelope

NOW = datetime(2026, 11, 22, tzinfo=UTC)


class Journal:
    """Records the order in which the loop touched store, dead letters and offsets."""

    def __init__(self) -> None:
        self.steps: list[str] = []


class FlakyLedger:
    def __init__(self, journal: Journal, failures: int) -> None:
        self.journal, self.failures = journal, failures

    def record_facts(self, facts, *, now, channel, origins=None):
        if self.failures:
            self.failures -= 1
            self.journal.steps.append("store failed")
            raise OperationalError("connection refused")
        self.journal.steps.append(f"stored {len(facts)}")
        return [RecordResult("stored", f.event_id, i + 1) for i, f in enumerate(facts)]

    def unpublished_dead_letters(self, channel):
        return []  # nothing parked has timed out here

    def mark_dead_letters_published(self, ids):
        assert not ids

    def expire_parked(self, now):
        return []


class OneBatchSource:
    def __init__(self, journal: Journal, messages: list[InboundMessage]) -> None:
        self.journal, self.messages = journal, messages
        self.committed: dict = {}

    def poll(self, wait=True):
        batch, self.messages = self.messages, []
        return batch

    def commit(self, next_offsets):
        self.journal.steps.append("committed")
        self.committed = next_offsets

    def lag(self):
        return 0


class Letters:
    def __init__(self, journal: Journal) -> None:
        self.journal, self.sent = journal, []

    def send(self, letter):
        self.sent.append(letter)

    def flush(self):
        self.journal.steps.append(f"dead-lettered {len(self.sent)}")


def messages() -> list[InboundMessage]:
    good = envelope("learner.registered", REGISTRATION, learner_id="L1", source="s")
    return [InboundMessage("events", 0, 7, b"L1", json.dumps(good).encode()),
            InboundMessage("events", 1, 3, b"L2", b"not json")]


def make_loop(failures: int, retries: int = 3):
    journal = Journal()
    source = OneBatchSource(journal, messages())
    letters = Letters(journal)
    sleeps: list[float] = []
    loop = IngestLoop(FlakyLedger(journal, failures), source, letters,  # type: ignore[arg-type]
                      clock=lambda: NOW, retries=retries, sleep=sleeps.append)
    return loop, journal, source, letters, sleeps


def test_offsets_are_committed_only_after_the_store_and_the_dead_letters():
    loop, journal, source, letters, _ = make_loop(failures=0)
    assert loop.run_batch() == 2
    assert journal.steps == ["stored 1", "dead-lettered 1", "committed"]
    assert source.committed == {("events", 0): 8, ("events", 1): 4}
    assert letters.sent[0].code == "malformed_json" and letters.sent[0].message.offset == 3


def test_transient_store_errors_are_retried_with_doubling_backoff():
    loop, journal, _, _, sleeps = make_loop(failures=2)
    loop.run_batch()
    assert journal.steps == ["store failed", "store failed", "stored 1", "dead-lettered 1",
                             "committed"]
    assert sleeps == [0.5, 1.0]


def test_a_store_that_stays_down_stops_the_loop_without_committing():
    loop, journal, source, letters, _ = make_loop(failures=5, retries=3)
    with pytest.raises(StoreUnavailableError, match="3 times"):
        loop.run_batch()
    assert "committed" not in journal.steps and source.committed == {}
    assert letters.sent == []


def test_fault_points_sit_between_the_steps_in_the_documented_order():
    loop, journal, _, _, _ = make_loop(failures=0)
    loop.fault_point = journal.steps.append
    loop.run_batch()
    assert journal.steps == ["stored 1", "consume.after_store_commit", "dead-lettered 1",
                             "consume.after_dead_letters_flushed", "committed",
                             "consume.after_offset_commit"]


def test_by_default_the_loop_waits_for_the_store_with_the_batch_in_hand():
    loop, journal, source, _, sleeps = make_loop(failures=8, retries=0)
    assert loop.run_batch() == 2
    assert journal.steps[:8] == ["store failed"] * 8
    assert journal.steps[8:] == ["stored 1", "dead-lettered 1", "committed"]
    assert sleeps == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0, 5.0]  # capped: back within seconds
    assert source.committed == {("events", 0): 8, ("events", 1): 4}


def test_a_stop_while_waiting_for_the_store_leaves_the_batch_uncommitted():
    loop, journal, source, letters, sleeps = make_loop(failures=100, retries=0)
    loop.stopping = lambda: len(sleeps) >= 2
    with pytest.raises(StoreUnavailableError, match="stopping"):
        loop.run_batch()
    assert "committed" not in journal.steps and source.committed == {}
    assert letters.sent == []


class TwoBatchSource(OneBatchSource):
    """Two batches; the second is already fetched when the first is processed."""

    def __init__(self, journal: Journal, first: list[InboundMessage],
                 second: list[InboundMessage]) -> None:
        super().__init__(journal, first)
        self.batches = [first, second]
        self.commits: list[dict] = []

    def poll(self, wait=True):
        self.journal.steps.append(f"polled (wait={wait})")
        return self.batches.pop(0) if self.batches else []

    def commit(self, next_offsets):
        super().commit(next_offsets)
        self.commits.append(next_offsets)


class BesideValidation:
    """Validation that runs beside the loop: records when each batch is handed over and when
    its results are asked for."""

    runs_beside = True

    def __init__(self, journal: Journal) -> None:
        self.journal = journal

    def submit(self, batch):
        offsets = [m.offset for m in batch]
        self.journal.steps.append(f"submitted {offsets}")

        def results():
            self.journal.steps.append(f"results {offsets}")
            return [validate_message(m) for m in batch]
        return results


def test_with_validation_beside_the_next_batch_is_handed_over_before_this_one_is_stored():
    journal = Journal()
    good = envelope("learner.registered", REGISTRATION, learner_id="L9", source="s")
    first = messages()
    second = [InboundMessage("events", 0, 8, b"L9", json.dumps(good).encode())]
    source = TwoBatchSource(journal, first, second)
    loop = IngestLoop(FlakyLedger(journal, 0), source, Letters(journal),  # type: ignore[arg-type]
                      clock=lambda: NOW, validation=BesideValidation(journal))
    assert loop.run_batch() == 2
    assert journal.steps == ["polled (wait=True)", "submitted [7, 3]", "polled (wait=False)",
                             "submitted [8]", "results [7, 3]", "stored 1", "dead-lettered 1",
                             "committed"]
    # The batch read ahead is not committed with the one before: a crash here re-reads it.
    assert source.commits == [{("events", 0): 8, ("events", 1): 4}]
    journal.steps.clear()
    assert loop.run_batch() == 1
    # No dead letter in this batch: nothing to wait for from the broker.
    assert journal.steps == ["polled (wait=False)", "results [8]", "stored 1", "committed"]
    assert source.commits[-1] == {("events", 0): 9}


class BrokerAwayLetters(Letters):
    """A dead-letter sink whose broker does not acknowledge the first `failures` flushes."""

    def __init__(self, journal: Journal, failures: int) -> None:
        super().__init__(journal)
        self.failures = failures

    def flush(self):
        if self.failures:
            self.failures -= 1
            self.journal.steps.append("dead letters not acknowledged")
            raise PublishFailedError("KafkaTimeoutError: no acks")
        super().flush()


def test_dead_letters_the_broker_does_not_take_are_sent_again_before_the_commit(caplog):
    loop, journal, source, _, sleeps = make_loop(failures=0)
    letters = loop.dead_letters = BrokerAwayLetters(journal, failures=3)
    with caplog.at_level(logging.WARNING, logger="studyledger.consume"):
        assert loop.run_batch() == 2
    assert journal.steps == ["stored 1", *["dead letters not acknowledged"] * 3,
                             "dead-lettered 4", "committed"]
    assert [letter.message.offset for letter in letters.sent] == [3] * 4  # the same, again
    assert sleeps == [0.5, 1.0, 2.0]
    messages = [r.getMessage() for r in caplog.records]
    assert sum("consume waits for it" in m for m in messages) == 1, messages
    assert any("takes dead letters again" in m for m in messages), messages
    assert source.committed == {("events", 0): 8, ("events", 1): 4}


def test_a_stop_while_waiting_for_the_broker_leaves_the_batch_uncommitted():
    loop, journal, source, _, sleeps = make_loop(failures=0)
    loop.dead_letters = BrokerAwayLetters(journal, failures=100)
    loop.stopping = lambda: len(sleeps) >= 2
    with pytest.raises(StoppedWaitingError, match="read again"):
        loop.run_batch()
    assert "committed" not in journal.steps and source.committed == {}
