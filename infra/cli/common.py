"""What every `studyledger` command shares: exit codes, the one-line error, the store."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TypeVar

from eventsourcing.persistence import PersistenceError

from domain.application import StudyLedger
from infra.bootstrap import build_ledger
from infra.settings import Settings, display_url
from infra.store.sql_connection import StoreSetupError

T = TypeVar("T")

EXIT_OK, EXIT_REJECTED, EXIT_USAGE, EXIT_BROKEN, EXIT_STORE_DOWN = 0, 1, 2, 3, 4
EXIT_UNHEALTHY = 5
EXIT_INTERRUPTED = 130
# What each exit code means, for `--help` and the README (a test keeps them the same).
EXIT_CODES = (
    (EXIT_OK, "done"),
    (EXIT_REJECTED, "done, but some input was refused (ingest, dead-letters redrive)"),
    (EXIT_USAGE, "nothing done: bad arguments or settings, unknown id, store unusable"),
    (EXIT_BROKEN, "verify found a broken hash chain"),
    (EXIT_STORE_DOWN, "consume gave up: the store stayed down through every retry"),
    (EXIT_UNHEALTHY, "doctor: a check failed"),
    (EXIT_INTERRUPTED, "interrupted (Ctrl-C); committed batches stay recorded"),
)


def exit_codes_help() -> str:
    return "exit codes:\n" + "\n".join(f"  {code:<4} {meaning}" for code, meaning in EXIT_CODES)


def package_version() -> str:
    """The installed package's version (pyproject.toml), as pip knows it."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("studyledger")
    except PackageNotFoundError:
        return "unknown (not installed: pip install -e .)"


class CommandError(Exception):
    """A user-facing failure: printed as one line, exit code attached."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def open_when_answering(settings: Settings, then: Callable[[StudyLedger], T], *,
                        stop: threading.Event, log: logging.Logger) -> T | None:
    """For a long-running command: the ledger, then `then(ledger)` (its loop, its Kafka
    ends), each once what it connects to answers (infra.ops.startup); None when stopped
    while waiting, with nothing left open."""
    from infra.ops.startup import wait_until_answering

    ledger = wait_until_answering(lambda: open_ledger(settings), stop=stop, log=log)
    if ledger is None:
        return None
    started = wait_until_answering(lambda: then(ledger), stop=stop, log=log)
    if started is None:
        ledger.close()
    return started


def open_ledger(settings: Settings) -> StudyLedger:
    try:
        return build_ledger(settings)
    except StoreSetupError as exc:
        raise CommandError(str(exc)) from exc  # already names the store and what to do
    except (PersistenceError, OSError) as exc:
        raise CommandError(f"cannot open the store at {display_url(settings.database_url)}: "
                           f"{exc}") from exc
