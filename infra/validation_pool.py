"""Worker processes that validate facts beside the writer.

Validating a fact (decoding, the envelope models, the canonical form and its digest) is
about a third of an ingest's CPU. In the writer's process it shares one GIL with the
writer; in a worker it runs on a core of its own. A valid fact crosses back in its wire
form (domain.facts.to_wire, rebuilt with from_wire in a few microseconds; pickling its
models costs more than validating it again).

Workers come from a fork server, not a fork of the caller: the caller holds the store's
connections and their pool threads. Each worker exits as soon as the process that started
it is gone, however that ended (a SIGKILL shuts nothing down, and a worker would otherwise
wait on its queue forever, keeping the fork server, and the caller's stdout, alive).
"""

from __future__ import annotations

import multiprocessing
import os
import select
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


def spare_cores() -> int:
    """Cores beyond the writer's one: how many workers can validate beside it."""
    return max(0, len(os.sched_getaffinity(0)) - 1)


class ValidationPool:
    """`workers` processes, each with the validation code imported once (by the fork server,
    which imports `preload`, the module of the functions it will run)."""

    def __init__(self, workers: int, preload: str) -> None:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([preload])
        self._pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_exit_with,
                                         initargs=(os.getpid(),))

    def submit(self, function: Callable[..., T], *args: Any) -> Future[T]:
        return self._pool.submit(function, *args)

    def close(self, *, wait: bool = True) -> None:
        """Stop the workers; what was submitted and not started is dropped."""
        self._pool.shutdown(wait=wait, cancel_futures=True)


def _exit_with(caller_pid: int) -> None:
    """In a worker, first: exit as soon as the caller is gone."""
    def watch() -> None:
        try:
            gone = os.pidfd_open(caller_pid)  # readable once the process has exited
            select.select([gone], [], [])
        except (AttributeError, OSError):  # no pidfds (not Linux 5.3+): ask every 0.5 s
            while _alive(caller_pid):
                time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, name="caller-watch", daemon=True).start()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
