"""Prometheus metrics, one set for every process: API workers, consume, relay, project, ingest.

With several API workers (`serve --workers N`) each worker writes its samples to files in
PROMETHEUS_MULTIPROC_DIR, which `serve` points at a fresh temporary directory before the
workers start, and a scrape of any worker adds up all of them. Values that the store holds
(log head, views' position, parked facts) are read at scrape time, as /health reads them.
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter as Tally
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger("studyledger.metrics")
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Latency buckets from a cached balance read (~1 ms) to a slow batch write.
SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

HTTP_REQUESTS = Counter("studyledger_http_requests", "HTTP requests answered, per route "
                        "template (never a raw path) and status", ["method", "route", "status"])
HTTP_SECONDS = Histogram("studyledger_http_request_duration_seconds", "HTTP request latency",
                         ["method", "route", "status"], buckets=SECONDS)
FACTS = Counter("studyledger_facts", "Facts received, per channel (http, kafka, cli) and "
                "outcome (stored, duplicate, rejected, parked)", ["channel", "status"])
DEAD_LETTERS = Counter("studyledger_dead_letters_sent",
                       "Messages sent to the dead-letter topic (acknowledged by the broker)")
WRITER_LOCK_WAIT = Histogram("studyledger_writer_lock_wait_seconds", "Time a batch writer "
                             "waited for the one-writer lock", buckets=SECONDS)
CONSUMER_LAG = Gauge("studyledger_consumer_lag_messages", "Messages behind the partition's end, "
                     "per assigned partition", ["topic", "partition"], multiprocess_mode="livemax")
FACT_OUTCOMES = ("stored", "duplicate", "rejected", "parked")


def count_facts(channel: str, statuses: Iterable[str]) -> None:
    for status, n in Tally(statuses).items():
        FACTS.labels(channel, status).inc(n)


class StoreGauges(Collector):
    """Positions and parked facts, asked of the store at each scrape; on a store that does
    not answer only `studyledger_store_up 0`."""

    def __init__(self, head: Callable[[], int | None], parked: Callable[[], int],
                 projected: Callable[[], int] | None = None) -> None:
        self.head, self.parked, self.projected = head, parked, projected

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            head = self.head() or 0
            parked = self.parked()
            projected = self.projected() if self.projected else None
        except Exception as exc:  # noqa: BLE001 - a scrape reports the store down, never 500s
            log.warning("metrics: the store did not answer: %s", exc)
            yield GaugeMetricFamily("studyledger_store_up", "The store answered", value=0)
            return
        yield GaugeMetricFamily("studyledger_store_up", "The store answered", value=1)
        yield GaugeMetricFamily("studyledger_log_head_position",
                                "Position of the last recorded fact", value=head)
        yield GaugeMetricFamily("studyledger_parked_facts",
                                "Facts waiting for a prerequisite", value=parked)
        if projected is not None:
            yield GaugeMetricFamily("studyledger_projection_position",
                                    "Position the read views have reached", value=projected)
            yield GaugeMetricFamily("studyledger_projection_lag",
                                    "Facts recorded but not yet in the read views",
                                    value=max(0, head - projected))


class _Scrape(Collector):
    """This process's (or with several workers, all workers') metrics, then the store's."""

    def __init__(self, store: Collector | None) -> None:
        self.store = store

    def collect(self) -> Iterator[Any]:
        if os.environ.get(MULTIPROC_ENV):
            shared = CollectorRegistry()
            multiprocess.MultiProcessCollector(shared)  # type: ignore[no-untyped-call]
            yield from shared.collect()
        else:
            yield from REGISTRY.collect()
        if self.store is not None:
            yield from self.store.collect()


def scrape_registry(store: Collector | None = None) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Scrape(store))
    return registry


def exposition(registry: CollectorRegistry) -> tuple[bytes, str]:
    return generate_latest(registry), CONTENT_TYPE_LATEST


def serve_metrics(port: int | None, host: str, store: Collector | None = None) -> None:
    """The scrape on a port of its own, for the processes without an HTTP API."""
    if port is None:
        return
    start_http_server(port, addr=host, registry=scrape_registry(store))
    log.info("metrics at http://%s:%d/metrics", host, port)


class PrometheusTelemetry:
    """The API's `Telemetry`, with the store's gauges read through `store`."""

    def __init__(self, store: Collector | None = None) -> None:
        self.registry = scrape_registry(store)

    def request_done(self, method: str, route: str, status: int, seconds: float) -> None:
        code = str(status)
        HTTP_REQUESTS.labels(method, route, code).inc()
        HTTP_SECONDS.labels(method, route, code).observe(seconds)

    def facts_recorded(self, channel: str, statuses: Iterable[str]) -> None:
        count_facts(channel, statuses)

    def exposition(self) -> tuple[bytes, str]:
        return exposition(self.registry)


class CountingDeadLetters:
    """A dead-letter sink that counts what the broker acknowledged (a batch the broker did
    not take is sent again, and counted once)."""

    def __init__(self, sink: Any) -> None:
        self.sink = sink
        self._unacknowledged = 0

    def send(self, letter: Any) -> None:
        self.sink.send(letter)
        self._unacknowledged += 1

    def flush(self) -> None:
        sent, self._unacknowledged = self._unacknowledged, 0
        self.sink.flush()
        DEAD_LETTERS.inc(sent)

    def close(self) -> None:
        self.sink.close()


class KafkaIngestMeter:
    """Turns the ingest loop's running totals into fact counts, and keeps the per-partition
    lag gauge (asked of the broker at most once a second)."""

    def __init__(self, stats: Any, partition_lags: Callable[[], dict[tuple[str, int], int]],
                 channel: str = "kafka") -> None:
        self.stats, self.partition_lags, self.channel = stats, partition_lags, channel
        self.seen = {"stored": 0, "duplicate": 0, "parked": 0, "dead_lettered": 0}
        self.lag_checked = 0.0

    def update(self) -> None:
        for field, label in (("stored", "stored"), ("duplicate", "duplicate"),
                             ("parked", "parked"), ("dead_lettered", "rejected")):
            now = getattr(self.stats, field)
            if now > self.seen[field]:
                FACTS.labels(self.channel, label).inc(now - self.seen[field])
            self.seen[field] = now
        if time.monotonic() - self.lag_checked >= 1:
            self.lag_checked = time.monotonic()
            for (topic, partition), lag in self.partition_lags().items():
                CONSUMER_LAG.labels(topic, str(partition)).set(lag)
