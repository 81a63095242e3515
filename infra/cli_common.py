"""What every `studyledger` command shares: exit codes, the one-line error, the store."""

from __future__ import annotations

from eventsourcing.persistence import PersistenceError

from domain.application import StudyLedger
from infra.bootstrap import build_ledger
from infra.settings import Settings, display_url
from infra.sql_connection import StoreSetupError

EXIT_OK, EXIT_REJECTED, EXIT_USAGE, EXIT_BROKEN, EXIT_STORE_DOWN = 0, 1, 2, 3, 4


class CommandError(Exception):
    """A user-facing failure: printed as one line, exit code attached."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def open_ledger(settings: Settings) -> StudyLedger:
    try:
        return build_ledger(settings)
    except StoreSetupError as exc:
        raise CommandError(str(exc)) from exc  # already names the store and what to do
    except (PersistenceError, OSError) as exc:
        raise CommandError(f"cannot open the store at {display_url(settings.database_url)}: "
                           f"{exc}") from exc
