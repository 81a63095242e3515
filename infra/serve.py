"""`studyledger serve`: the HTTP API under uvicorn, with the projections kept current.

The projection runner runs in a thread of the serving process (the uvicorn supervisor when
there are several workers), so there is exactly one runner however many workers answer.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI

from api.app import create_app
from api.waiting import create_waiting_app
from consumers.running import run_until_stopped
from domain.errors import one_line
from infra.bootstrap import build_projector, build_services, stop_on_signals
from infra.ops.metrics_wiring import shared_worker_metrics
from infra.ops.startup import wait_until_answering, waits_out
from infra.settings import Settings
from projections.runner import Progress, Projector

# `build_services` is imported from here by the tests that serve the API in-process.
__all__ = ["ProjectionThread", "build_services", "create_app_from_env", "serve"]

log = logging.getLogger("studyledger.serve")


def create_app_from_env() -> FastAPI | UntilStoreAnswers:
    """uvicorn's factory in each worker: everything from STUDYLEDGER_* variables. A store
    that does not answer yet is waited for behind 503s (UntilStoreAnswers); one that
    refuses ends the worker with its error."""
    # The access log (studyledger.access) is ours, with key ids; uvicorn's own is off.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = Settings()
    try:
        return create_app(build_services(settings))
    except Exception as exc:
        if not waits_out(exc):
            raise
        return UntilStoreAnswers(lambda: create_app(build_services(settings)))


class UntilStoreAnswers:
    """The ASGI app of a serving process started before its store answers: 503 to every
    request (api.waiting) while a thread builds the real app, waiting with a backoff as
    every long-running process does (infra.ops.startup); then the real app, for good.

    The real app has no lifespan handlers of its own, so the lifespan this wrapper answers
    while waiting is all it needs."""

    def __init__(self, build: Callable[[], FastAPI]) -> None:
        self._app: FastAPI | None = None
        self._waiting = create_waiting_app()
        self._stop = threading.Event()
        self._build = build
        self._thread = threading.Thread(target=self._build_when_answering,
                                        name="until-store-answers", daemon=True)
        self._thread.start()

    def _build_when_answering(self) -> None:
        # Its first failure is logged as "the store does not answer (...); waiting for it".
        try:
            self._app = wait_until_answering(self._build, stop=self._stop, log=log)
        except Exception as exc:  # noqa: BLE001 - a store that refuses: said, and 503 stays
            log.error("the store refuses this server (%s); it answers 503 until restarted "
                      "with settings the store accepts", one_line(exc))

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        app = self._app
        if app is not None:
            await app(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        else:
            await self._waiting(scope, receive, send)

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self._stop.set()
                await send({"type": "lifespan.shutdown.complete"})
                return


def keep_views_current(projector: Projector, stop: threading.Event, poll_seconds: float,
                       progress: Progress | None = None) -> None:
    """Project until `stop`, in the loop every long-running worker shares; the lease is
    given up on the way out, so a standing-by runner takes over at once."""
    try:
        run_until_stopped(projector.runner(stop, progress).step, stop,
                          poll_seconds=poll_seconds)
    finally:
        projector.lease.release()


class ProjectionThread:
    """Keeps the views current in the background; a failing batch is logged and retried.
    A store that does not answer at start is waited for in the thread (infra.ops.startup)."""

    def __init__(self, settings: Settings, poll_seconds: float = 0.2) -> None:
        self.settings = settings
        self.projector: Projector | None = None
        try:
            self.projector = build_projector(settings)
        except Exception as exc:
            if not waits_out(exc):
                raise  # a store that refuses: the caller's one-line error
        self.poll_seconds = poll_seconds
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="projections", daemon=True)

    def _run(self) -> None:
        try:
            if self.projector is None:
                self.projector = wait_until_answering(
                    lambda: build_projector(self.settings), stop=self.stop, log=log)
        except Exception as exc:  # noqa: BLE001 - a store that refuses: said, once
            log.error("the projections cannot open the store (%s); they do not run in this "
                      "process", one_line(exc))
            return
        while self.projector is not None and not self.stop.is_set():
            try:
                keep_views_current(self.projector, self.stop, self.poll_seconds)
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
    # ours sets an event instead of killing the process, so serving ends in a normal return.
    stop_on_signals()
    projections = ProjectionThread(settings).start() if project else None
    try:
        with shared_worker_metrics(settings.api_workers):
            uvicorn.run("infra.serve:create_app_from_env", factory=True,
                        host=settings.api_host, port=settings.api_port,
                        workers=settings.api_workers, log_level=log_level, access_log=False)
    finally:
        if projections is not None:
            projections.close()


def free_port() -> int:
    """A loopback port nobody listens on now (bound, read back, released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def app_in_thread(app: FastAPI, *, start_timeout: float = 30.0) -> Iterator[str]:
    """`app` under uvicorn in a thread of this process, on a free loopback port, for tests
    and tools (conformance, fuzzing); yields its base URL and stops it afterwards."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the API server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
