"""`studyledger consume`, `relay` and `topics`: the Kafka side of the command line."""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Iterator
from typing import Any

from infra.cli_common import EXIT_OK, EXIT_STORE_DOWN, CommandError, open_ledger
from infra.settings import Settings


@contextlib.contextmanager
def _kafka_errors(settings: Settings) -> Iterator[None]:
    """Kafka failures as one line: not configured, unreachable, refused."""
    from kafka.errors import KafkaError

    from infra.kafka_io import KafkaSetupError

    try:
        yield
    except KafkaSetupError as exc:
        raise CommandError(str(exc)) from exc
    except KafkaError as exc:
        raise CommandError(f"Kafka at {settings.kafka_bootstrap}: {exc!r}") from exc


def _stop_on_signals() -> Any:
    import signal
    import threading

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())  # finish the batch in hand, then exit
    return stop


def _kafka_client_id(settings: Settings, role: str) -> str:
    import socket

    return f"{settings.kafka_client_id}-{role}-{socket.gethostname()}-{os.getpid()}"


def cmd_consume(args: argparse.Namespace, settings: Settings) -> int:
    """Kafka -> event store, offsets committed only after the store (see consumers/)."""
    with _kafka_errors(settings):
        import logging
        import time

        from eventsourcing.persistence import PersistenceError

        from consumers.ingest_loop import IngestLoop, StoreUnavailableError
        from infra.fault_injection import fault_point_from
        from infra.ingest import utc_now
        from infra.kafka_io import KafkaDeadLetterSink, KafkaMessageSource
        from infra.metrics import CountingDeadLetters, KafkaIngestMeter
        from infra.metrics_wiring import serve_store_metrics

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
        log = logging.getLogger("studyledger.consume")
        ledger = open_ledger(settings)
        client_id = _kafka_client_id(settings, "consume")
        source = KafkaMessageSource(settings, client_id)
        dead_letters = CountingDeadLetters(KafkaDeadLetterSink(settings, client_id))
        stop = _stop_on_signals()
        # Waits for the store are cut short by SIGTERM (the batch stays uncommitted).
        loop = IngestLoop(ledger, source, dead_letters, clock=utc_now,
                          retries=settings.kafka_store_retries, sleep=stop.wait,
                          stopping=stop.is_set,
                          fault_point=fault_point_from(settings.fault_kill_at))
        meter = KafkaIngestMeter(loop.stats, source.partition_lags)
        serve_store_metrics(settings, views=False)
        log.info("consuming %s as %s in group %s", settings.kafka_topic_events, client_id,
                 settings.kafka_group_id)
        assigned: list[int] = []
        idle_since = last_report = time.monotonic()

        def report() -> None:
            s = loop.stats
            try:
                parked: int | str = ledger.parked_count()
            except PersistenceError:
                parked = "unknown (store unavailable)"
            log.info("consumed %d (stored %d, duplicate %d, parked %d, dead-lettered %d) at "
                     "%.0f msg/s; lag %s; waiting in the store: %s parked", s.messages,
                     s.stored, s.duplicate, s.parked, s.dead_lettered, s.rate(), source.lag(),
                     parked)

        try:
            while not stop.is_set():
                count = loop.run_batch()
                meter.update()
                now = time.monotonic()
                if source.assignment() != assigned:
                    assigned = source.assignment()
                    log.info("partitions assigned: %s", assigned)
                if count or not assigned:
                    idle_since = now  # idle time counts only once partitions are ours
                elif args.until_idle is not None and now - idle_since >= args.until_idle:
                    log.info("idle for %.1f s: stopping", args.until_idle)
                    break
                if now - last_report >= settings.kafka_report_seconds:
                    report()
                    last_report = now
        except StoreUnavailableError as exc:
            log.error("giving up: %s", exc)
            return EXIT_STORE_DOWN
        finally:
            source.close()
            dead_letters.close()
        report()
        return EXIT_OK


def cmd_relay(args: argparse.Namespace, settings: Settings) -> int:
    """Event store -> `studyledger.recorded`, position stored after the broker's acks."""
    with _kafka_errors(settings):
        import logging
        import time

        from consumers.relay import RelayLoop
        from infra.fault_injection import fault_point_from
        from infra.kafka_io import KafkaPublisher
        from infra.metrics_wiring import serve_store_metrics
        from infra.relay_position import RelayPositionStore

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
        log = logging.getLogger("studyledger.relay")
        ledger = open_ledger(settings)
        publisher = KafkaPublisher(settings, _kafka_client_id(settings, "relay"))
        positions = RelayPositionStore(settings, settings.kafka_topic_recorded)
        loop = RelayLoop(ledger, publisher, positions, batch_size=args.batch_size,
                         fault_point=fault_point_from(settings.fault_kill_at))
        stop = _stop_on_signals()
        serve_store_metrics(settings, views=False)
        log.info("relaying to %s from position %d (lag %d)", settings.kafka_topic_recorded,
                 positions.position(), loop.lag())
        published, started, last_report = 0, time.monotonic(), time.monotonic()
        try:
            while not stop.is_set():
                count = loop.run_batch()
                published += count
                if time.monotonic() - last_report >= settings.kafka_report_seconds:
                    log.info("published %d at %.0f/s; position %d, lag %d", published,
                             published / (time.monotonic() - started), positions.position(),
                             loop.lag())
                    last_report = time.monotonic()
                if count == 0:
                    if args.once:
                        break
                    stop.wait(args.poll)
            log.info("published %d; position %d", published, positions.position())
        finally:
            publisher.close()
            positions.close()
        return EXIT_OK


def cmd_topics(args: argparse.Namespace, settings: Settings) -> int:
    with _kafka_errors(settings):
        from infra.kafka_io import create_topics

        for line in create_topics(settings, args.partitions, args.replication_factor):
            print(line)
        return EXIT_OK
