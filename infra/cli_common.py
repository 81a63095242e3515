"""What every `studyledger` command shares: exit codes, the one-line error, the store."""

from __future__ import annotations

from eventsourcing.persistence import PersistenceError

from domain.application import StudyLedger
from infra.bootstrap import build_ledger
from infra.settings import Settings

EXIT_OK, EXIT_REJECTED, EXIT_USAGE, EXIT_BROKEN, EXIT_STORE_DOWN = 0, 1, 2, 3, 4


class CommandError(Exception):
    """A user-facing failure: printed as one line, exit code attached."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def open_ledger(settings: Settings) -> StudyLedger:
    try:
        return build_ledger(settings)
    except (PersistenceError, OSError) as exc:
        raise CommandError(f"cannot open the store at {settings.database_url}: {exc}") from exc
