"""The `studyledger` command line. Every failure ends in one clear line and a non-zero exit.

Each command group's module adds its own commands (`add_commands`); this module builds the
parser from them and turns failures into one line and an exit code."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from eventsourcing.persistence import PersistenceError
from pydantic import ValidationError

from domain.errors import StudyLedgerError
from infra.cli import audit, bench, export, kafka_cmds, parking, reads, serve, store
from infra.cli.common import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    CommandError,
    exit_codes_help,
    package_version,
)
from infra.ops.doctor import add_doctor_command
from infra.settings import Settings

# In the order `studyledger --help` lists them.
COMMAND_GROUPS = (serve.add_commands, kafka_cmds.add_commands, parking.add_commands,
                  export.add_commands, add_doctor_command, store.add_commands,
                  reads.add_commands, bench.add_commands, audit.add_commands)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="studyledger",
        description="StudyLedger: an event-sourced learning record system. The store is "
        "chosen by STUDYLEDGER_DATABASE_URL (default sqlite:///./var/studyledger.db).",
        epilog=exit_codes_help(), formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version",
                        version=f"studyledger {package_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add_commands in COMMAND_GROUPS:
        add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace, Settings], int] = args.func
    try:
        settings = Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        print(f"error: configuration: STUDYLEDGER_{str(first['loc'][0]).upper()}: "
              f"{first['msg']}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return func(args, settings)
    except CommandError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except StudyLedgerError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return EXIT_USAGE
    except PersistenceError as exc:
        print(f"error: the store failed: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        # The reader (e.g. `| head`) went away; that is not an error of ours.
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        return EXIT_OK
    except KeyboardInterrupt:
        print("interrupted: every batch already committed stays recorded; "
              "re-run to continue (already stored facts answer 'duplicate')", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
