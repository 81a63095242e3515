"""`studyledger export`: recorded facts as JSONL that `ingest` takes back, or an org
subtree's balances as a CSV for spreadsheets."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from domain.policy.pack import DEFAULT_PACK, SHIPPED_PACKS
from infra.cli.common import EXIT_OK, CommandError, open_ledger
from infra.settings import Settings


@contextlib.contextmanager
def _output(out: str | None, newline: str | None = None) -> Iterator[IO[str]]:
    """The file (written beside it, then renamed, so an interrupted export never looks
    complete) or stdout."""
    if out is None:
        yield sys.stdout
        return
    path = Path(out)
    partial = path.with_name(path.name + ".partial")
    try:
        with partial.open("w", encoding="utf-8", newline=newline) as handle:
            yield handle
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, path)


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    if args.balances:
        return _export_balances(args, settings)
    if args.xapi:
        from infra.xapi.maintenance import export_statements

        with _output(args.out) as out:
            count = export_statements(settings, out, args.from_position)
        print(f"exported {count} xAPI statements", file=sys.stderr)
        return EXIT_OK
    if args.policy or args.period:
        raise CommandError("--policy and --period go with --balances")
    if args.learner and args.org:
        raise CommandError("--learner and --org do not go together: export one or the other")
    from infra.files.export import ExportScope, export_facts

    scope = ExportScope(learners=tuple(args.learner or ()), org=args.org,
                        from_position=args.from_position)
    ledger = open_ledger(settings)
    with _output(args.out) as out:
        report = export_facts(ledger, out, scope)
    human = sys.stderr if args.out is None else sys.stdout  # stdout may be the export
    where = f" to {args.out}" if args.out else ""
    span = (f", positions {report.first_position}-{report.last_position}"
            if report.facts else "")
    print(f"exported {report.facts} facts{where}: {report.learner_facts} learner facts "
          f"({len(report.learners)} learners), {report.org_facts} org facts "
          f"({len(report.orgs)} orgs){span}", file=human)
    print(f"the log ended at position {report.log_end}; the next export of what comes after: "
          f"--from-position {report.log_end + 1}", file=human)
    return EXIT_OK


def _export_balances(args: argparse.Namespace, settings: Settings) -> int:
    if not args.org or not args.period:
        raise CommandError("--balances needs --org and --period (and --policy, default "
                           f"{DEFAULT_PACK})")
    if args.learner or args.from_position != 1:
        raise CommandError("--balances is per org: --learner and --from-position do not apply")
    from infra.bootstrap import build_views
    from infra.views.balance_export import write_balances_csv

    ledger = open_ledger(settings)
    views = build_views(settings)
    try:
        # csv writes its own line ends ("\r\n", as spreadsheets expect)
        with _output(args.out, newline="") as out:
            report = write_balances_csv(views, ledger, out, org=args.org,
                                        policy=args.policy or DEFAULT_PACK, period=args.period)
    finally:
        views.close()
    human = sys.stderr if args.out is None else sys.stdout
    where = f" to {args.out}" if args.out else ""
    print(f"wrote the balances of {report.learners} learners{where} ({report.short} short), "
          f"from the views at position {report.views_position}", file=human)
    if report.views_lag > 0:
        print(f"warning: the views are {report.views_lag} facts behind the store, so these "
              "balances may be out of date: run `studyledger project --once` first (or keep "
              "`studyledger project` or `serve` running)", file=sys.stderr)
    return EXIT_OK


def _position(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("log positions start at 1")
    return value


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "export", help="recorded facts as JSONL that `ingest` takes back; or, with "
        "--balances, an org subtree's balances as a CSV",
        description="Writes each recorded fact, in log order, as one JSON line: the fact as "
        "stored with its event_id, position, recorded_at, hash and prev_hash (the shape the "
        "relay publishes). `studyledger ingest` takes the file back: same event ids, same "
        "order per learner, and on an empty store the same hash chain.")
    p.add_argument("--learner", action="append", metavar="L",
                   help="only this learner's facts (repeatable), with the org facts they need")
    p.add_argument("--org", metavar="O",
                   help="only the facts of this org's subtree: its orgs, the learners in them "
                   "now, and the org facts those need (parents, orgs of earlier placements)")
    p.add_argument("--from-position", type=_position, default=1, metavar="N",
                   help="only facts at log position N or later (an incremental export)")
    p.add_argument("--out", metavar="FILE", help="write here (default: stdout)")
    p.add_argument("--balances", action="store_true",
                   help="a CSV of the balances of --org's learners for --policy and --period, "
                   "from the read views (bring them up to date first: `project --once`)")
    p.add_argument("--xapi", action="store_true",
                   help="the xAPI statements instead, in log order (from --from-position of "
                   "the statement log)")
    p.add_argument("--policy", choices=SHIPPED_PACKS, help=f"with --balances (default "
                   f"{DEFAULT_PACK})")
    p.add_argument("--period", help="with --balances: a cycle (2021-2025) or a year (2023)")
    p.set_defaults(func=cmd_export)
