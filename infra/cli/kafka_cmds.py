"""`studyledger consume`, `relay` and `topics`: the Kafka side of the command line."""

from __future__ import annotations

import argparse
import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from infra.cli.common import (
    EXIT_OK,
    EXIT_STORE_DOWN,
    CommandError,
    open_when_answering,
)
from infra.settings import Settings

if TYPE_CHECKING:
    from consumers.relay import RelayRunner
    from infra.bootstrap import KafkaIngest, KafkaRelay

LOG_FORMAT = "%(asctime)s %(name)s %(message)s"


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("consume", help="Kafka studyledger.events -> the store; bad messages "
                       "to the dead-letter topic")
    p.add_argument("--until-idle", type=float, metavar="SECONDS",
                   help="stop once no message arrived for this long (default: run until "
                   "SIGTERM)")
    p.set_defaults(func=cmd_consume)

    p = sub.add_parser("relay", help="publish every recorded fact to studyledger.recorded")
    p.add_argument("--once", action="store_true", help="stop when caught up")
    p.add_argument("--poll", type=float, default=0.5, help="seconds between polls when idle")
    p.add_argument("--batch-size", type=int, default=1000,
                   help="facts per publish batch; the position is stored after each")
    p.set_defaults(func=cmd_relay)

    p = sub.add_parser("topics", help="Kafka topics: `topics create` makes the three topics")
    p.add_argument("action", choices=["create"], help="create the three topics")
    p.add_argument("--partitions", type=int, default=6,
                   help="partitions per topic (default 6); learners spread over them")
    p.add_argument("--replication-factor", type=int, default=1,
                   help="copies of each partition (default 1; 3 on a production cluster)")
    p.set_defaults(func=cmd_topics)


@contextlib.contextmanager
def kafka_errors(settings: Settings) -> Iterator[None]:
    """Kafka failures as one line: not configured, unreachable, refused."""
    from kafka.errors import KafkaError

    from infra.kafka_io import KafkaSetupError

    try:
        yield
    except KafkaSetupError as exc:
        raise CommandError(str(exc)) from exc
    except KafkaError as exc:
        raise CommandError(f"Kafka at {settings.kafka_bootstrap}: {exc!r}") from exc


def cmd_consume(args: argparse.Namespace, settings: Settings) -> int:
    """Kafka -> event store, offsets committed only after the store (see consumers/)."""
    from consumers.ingest_loop import StoppedWaitingError, StoreUnavailableError
    from consumers.running import run_until_stopped
    from infra.bootstrap import build_ingest, stop_on_signals
    from infra.ops.metrics_wiring import serve_store_metrics

    with kafka_errors(settings):
        logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
        log = logging.getLogger("studyledger.consume")
        stop = stop_on_signals()
        started = open_when_answering(
            settings, lambda ledger: build_ingest(settings, ledger, stop=stop),
            stop=stop, log=log)
        if started is None:
            return EXIT_OK  # stopped while waiting for the store or the broker
        ingest = started
        serve_store_metrics(settings, views=False)
        log.info("consuming %s as %s in group %s", settings.kafka_topic_events,
                 ingest.client_id, settings.kafka_group_id)
        try:
            ended = run_until_stopped(_consume_step(ingest, log), stop,
                                      lambda: _report_consumed(ingest, log),
                                      report_seconds=settings.kafka_report_seconds,
                                      idle_seconds=args.until_idle)
        except StoreUnavailableError as exc:
            log.error("giving up: %s", exc)
            return EXIT_STORE_DOWN
        except StoppedWaitingError as exc:
            log.info("%s", exc)
            return EXIT_OK
        finally:
            ingest.close()
        if ended == "idle":
            log.info("idle for %.1f s: stopping", args.until_idle)
        _report_consumed(ingest, log)
        return EXIT_OK


def _consume_step(ingest: KafkaIngest, log: logging.Logger) -> Callable[[], int | None]:
    """One batch; None while no partition is ours (the idle time does not count then)."""
    assigned: list[int] = []

    def step() -> int | None:
        nonlocal assigned
        count = ingest.loop.run_batch()
        ingest.meter.update()
        if ingest.source.assignment() != assigned:
            assigned = ingest.source.assignment()
            log.info("partitions assigned: %s", assigned)
        return count if count or assigned else None

    return step


def _report_consumed(ingest: KafkaIngest, log: logging.Logger) -> None:
    from eventsourcing.persistence import PersistenceError

    s = ingest.loop.stats
    try:
        parked: int | str = ingest.loop.ledger.parked_count()
    except PersistenceError:
        parked = "unknown (store unavailable)"
    log.info("consumed %d (stored %d, duplicate %d, parked %d, dead-lettered %d) at "
             "%.0f msg/s; lag %s; waiting in the store: %s parked", s.messages,
             s.stored, s.duplicate, s.parked, s.dead_lettered, s.rate(), ingest.source.lag(),
             parked)


def cmd_relay(args: argparse.Namespace, settings: Settings) -> int:
    """Event store -> `studyledger.recorded`, position stored after the broker's acks."""
    from consumers.relay import RelayRunner
    from consumers.running import run_until_stopped
    from infra.bootstrap import build_relay, stop_on_signals
    from infra.ops.metrics_wiring import serve_store_metrics

    with kafka_errors(settings):
        logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
        log = logging.getLogger("studyledger.relay")
        stop = stop_on_signals()
        started = open_when_answering(
            settings, lambda ledger: build_relay(settings, ledger, batch_size=args.batch_size),
            stop=stop, log=log)
        if started is None:
            return EXIT_OK  # stopped while waiting for the store or the broker
        relay = started
        serve_store_metrics(settings, views=False)
        log.info("relaying to %s from position %d (lag %d)", settings.kafka_topic_recorded,
                 relay.positions.position(), relay.loop.lag())
        progress = _RelayProgress(relay, RelayRunner(relay.loop, stop), log)
        try:
            run_until_stopped(progress.step, stop, progress.report,
                              report_seconds=settings.kafka_report_seconds,
                              poll_seconds=args.poll, idle_seconds=0 if args.once else None)
            log.info("published %d; position %d", progress.published,
                     relay.positions.position())
        finally:
            relay.close()
        return EXIT_OK


class _RelayProgress:
    """Counts what the relay published, for its periodic log line."""

    def __init__(self, relay: KafkaRelay, runner: RelayRunner, log: logging.Logger) -> None:
        self.relay, self.runner, self.log = relay, runner, log
        self.published, self.started = 0, time.monotonic()

    def step(self) -> int | None:
        count = self.runner.step()
        self.published += count or 0
        return count

    def report(self) -> None:
        from domain.errors import StoreUnavailableError

        rate = self.published / (time.monotonic() - self.started)
        try:
            where = (f"position {self.relay.positions.position()}, "
                     f"lag {self.relay.loop.lag()}")
        except StoreUnavailableError:
            where = "position unknown (store unavailable)"
        self.log.info("published %d at %.0f/s; %s", self.published, rate, where)


def cmd_topics(args: argparse.Namespace, settings: Settings) -> int:
    with kafka_errors(settings):
        from infra.kafka_io import create_topics

        for line in create_topics(settings, args.partitions, args.replication_factor):
            print(line)
        return EXIT_OK
