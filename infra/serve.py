"""`studyledger serve`: the HTTP API under uvicorn, with the projections kept current.

The projection runner runs in a thread of the serving process (the uvicorn supervisor when
there are several workers), so there is exactly one runner however many workers answer.
"""

from __future__ import annotations

import logging
import signal
import threading

import uvicorn
from fastapi import FastAPI

from api.app import create_app
from api.services import Services
from infra.api_views import ApiReadViews
from infra.bootstrap import build_ledger, build_projector
from infra.certificate_store import CertificateStore
from infra.ingest import utc_now
from infra.key_store import KeyStore
from infra.metrics_wiring import api_observability, shared_worker_metrics
from infra.settings import Settings

log = logging.getLogger("studyledger.serve")


def build_services(settings: Settings) -> Services:
    ledger = build_ledger(settings)
    services = Services(
        ledger=ledger, views=ApiReadViews(settings, ledger), keys=KeyStore(settings),
        clock=utc_now, store_name="sqlite" if settings.is_sqlite else "postgresql",
        max_batch_facts=settings.api_max_batch_facts,
        max_body_bytes=settings.api_max_body_bytes,
        wait_timeout_seconds=settings.api_wait_timeout_seconds,
        certificates=CertificateStore(settings), public_base_url=settings.public_base_url)
    return api_observability(services, settings)


def create_app_from_env() -> FastAPI:
    """uvicorn's factory in each worker: everything from STUDYLEDGER_* variables."""
    # The access log (studyledger.access) is ours, with key ids; uvicorn's own is off.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    return create_app(build_services(Settings()))


class ProjectionThread:
    """Keeps the views current in the background; a failing batch is logged and retried."""

    def __init__(self, settings: Settings, poll_seconds: float = 0.2) -> None:
        self.projector = build_projector(settings)
        self.poll_seconds = poll_seconds
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="projections", daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                self.projector.run_forever(self.stop, self.poll_seconds)
            except Exception:  # noqa: BLE001 - keep serving; the next poll retries the batch
                log.exception("projection batch failed; retrying in 5 s")
                self.stop.wait(5)

    def start(self) -> ProjectionThread:
        self.thread.start()
        return self

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=60)


def serve(settings: Settings, *, project: bool = True, log_level: str = "info") -> None:
    """Serve until SIGINT/SIGTERM; uvicorn finishes the requests in flight, then we exit 0."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    # uvicorn re-raises the stop signal once it has shut down, to reach the previous handler;
    # a recording handler turns that into a normal return (exit 0) instead of death by signal.
    stop_signals: list[int] = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda received, _: stop_signals.append(received))
    projections = ProjectionThread(settings).start() if project else None
    try:
        with shared_worker_metrics(settings.api_workers):
            uvicorn.run("infra.serve:create_app_from_env", factory=True,
                        host=settings.api_host, port=settings.api_port,
                        workers=settings.api_workers, log_level=log_level, access_log=False)
    finally:
        if projections is not None:
            projections.close()
