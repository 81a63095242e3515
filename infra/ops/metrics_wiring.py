"""Metrics wired to the store: the scrape-time gauges of each process, built from settings."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from api.services import Services
from infra.ops.metrics import MULTIPROC_ENV, PrometheusTelemetry, StoreGauges, serve_metrics
from infra.settings import Settings


def api_observability(services: Services) -> Services:
    """The API's metrics, with the store gauges read as /health reads them."""
    ledger = services.ledger
    services.telemetry = PrometheusTelemetry(StoreGauges(
        head=ledger.recorder.max_notification_id, parked=ledger.parked_count,
        projected=services.views.position))
    return services


def serve_store_metrics(settings: Settings, *, views: bool) -> None:
    """With STUDYLEDGER_METRICS_PORT set, the metrics on that port, with gauges read through
    connections of their own (the scrape runs in the server's thread, beside the work)."""
    if settings.metrics_port is None:
        return
    from infra.bootstrap import build_ledger, build_views

    ledger = build_ledger(settings)
    projected = build_views(settings).position if views else None
    serve_metrics(settings.metrics_port, settings.metrics_host, StoreGauges(
        head=ledger.recorder.max_notification_id, parked=ledger.parked_count,
        projected=projected))


@contextmanager
def shared_worker_metrics(workers: int) -> Iterator[None]:
    """Several API workers write their samples to one fresh directory, set in the
    environment before the workers start (they inherit it), and removed afterwards; an
    operator's own PROMETHEUS_MULTIPROC_DIR is used as it is."""
    if workers <= 1 or os.environ.get(MULTIPROC_ENV):
        yield
        return
    path = tempfile.mkdtemp(prefix="studyledger-metrics-")
    os.environ[MULTIPROC_ENV] = path
    try:
        yield
    finally:
        del os.environ[MULTIPROC_ENV]
        shutil.rmtree(path, ignore_errors=True)
