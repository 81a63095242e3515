"""`studyledger balance`, `board`, `rank`, `compliance`, `stats` and `history`: questions
answered from the store and the read views."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime

from pydantic import BaseModel

from domain.credits.balance import BalanceAnswer
from domain.policy.pack import DEFAULT_PACK, SHIPPED_PACKS
from infra.cli.common import EXIT_OK, CommandError, open_ledger
from infra.settings import Settings
from projections.ports import ReadViews


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("balance", help="a learner's credit balance for a cycle or a year")
    p.add_argument("learner_id", help="the learner, e.g. L000042")
    _policy_option(p)
    p.add_argument("--period", required=True, help="a cycle (2021-2025) or a year (2023)")
    p.add_argument("--as-of", help="only facts recorded by this time (ISO 8601 with zone)")
    p.add_argument("--json", action="store_true", help="the balance answer as JSON")
    p.set_defaults(func=cmd_balance)
    _add_board_commands(sub)

    p = sub.add_parser("compliance", help="learners of an org subtree short of a requirement")
    p.add_argument("org", help="the org whose subtree is checked")
    _policy_option(p)
    p.add_argument("--period", required=True, help="a cycle (2021-2025) or a year (2023)")
    p.add_argument("--json", action="store_true", help="the answer as JSON")
    p.set_defaults(func=cmd_compliance)

    p = sub.add_parser("stats", help="an org subtree's statistics for a year (JSON)")
    p.add_argument("org", help="the org whose subtree is counted")
    _policy_option(p)
    p.add_argument("--year", type=int, required=True, help="the calendar year, e.g. 2024")
    p.set_defaults(func=cmd_stats)
    _add_history_command(sub)


def _policy_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--policy", default=DEFAULT_PACK, choices=SHIPPED_PACKS,
                   help="policy pack (default %(default)s)")


def _add_board_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("board", help="a ranking board (run `project` first)")
    p.add_argument("policy", choices=SHIPPED_PACKS, help="policy pack")
    p.add_argument("period", help="a cycle, e.g. 2021-2025")
    p.add_argument("--org", help="the org whose subtree is ranked (default: every org)")
    p.add_argument("--limit", type=int, default=50, help="entries per page (default 50)")
    p.add_argument("--cursor", help="next_cursor of the previous page")
    p.add_argument("--anonymous", action="store_true", help="as the public sees it")
    p.add_argument("--json", action="store_true", help="the board answer as JSON")
    p.set_defaults(func=cmd_board)

    p = sub.add_parser("rank", help="one learner's rank and score on a board")
    p.add_argument("policy", choices=SHIPPED_PACKS, help="policy pack")
    p.add_argument("period", help="a cycle, e.g. 2021-2025")
    p.add_argument("learner_id", help="the learner, e.g. L000042")
    p.add_argument("--org", help="rank within this org's subtree (default: every org)")
    p.add_argument("--json", action="store_true", help="the answer as JSON")
    p.set_defaults(func=cmd_rank)


def _add_history_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("history", help="a learner's audit trail with each fact's credit effect")
    p.add_argument("learner_id", help="the learner, e.g. L000042")
    p.add_argument("--known-at", help="as known at this time: facts recorded by then "
                   "(ISO 8601 with zone, or a date: midnight Asia/Shanghai)")
    p.add_argument("--happened-by", help="as happened by this time: facts that occurred by "
                   "then, as the record knows them now (ISO 8601 with zone, or a date)")
    p.add_argument("--as-of", help="the same as --known-at (older name)")
    p.add_argument("--limit", type=int, default=100, help="facts per page (default 100)")
    p.add_argument("--cursor", help="next_cursor of the previous page")
    p.add_argument("--json", action="store_true", help="the audit trail as JSON")
    p.set_defaults(func=cmd_history)


def _print_json(answer: BaseModel) -> None:
    """An answer as the API sends it, indented, Chinese as itself."""
    print(json.dumps(answer.model_dump(mode="json"), indent=2, ensure_ascii=False))


def _print_balance(answer: BalanceAnswer) -> None:
    print(f"{answer.learner_id}  {answer.policy.id} v{answer.policy.version}  "
          f"period {answer.period}  status: {answer.status}")
    print(f"  {'category':<20}{'raw':>10}{'counted':>10}{'excess':>10}")
    for name, c in answer.categories.items():
        print(f"  {name:<20}{c.raw:>10.2f}{c.counted:>10.2f}{c.excess:>10.2f}")
    print("  totals: " + ", ".join(f"{k} {v:.2f}" for k, v in answer.totals.items()))
    for r in answer.requirements:
        year = f" {r.year}" if r.year else ""
        mark = "met" if r.met else f"short by {r.shortfall:.2f}"
        print(f"  requirement {r.name}{year}: {r.actual:.2f} of {r.required:.2f} ({mark})")
    if answer.promotion is not None:
        print(f"  promotion {answer.promotion.year}: {answer.promotion.status}")


def cmd_balance(args: argparse.Namespace, settings: Settings) -> int:
    as_of = _parse_time(args.as_of) if args.as_of else None
    answer = open_ledger(settings).balance(args.learner_id, args.policy, args.period, as_of)
    if args.json:
        print(answer.model_dump_json(indent=2))
    else:
        _print_balance(answer)
    return EXIT_OK


def _parse_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise CommandError(f"--as-of {text!r} is not an ISO 8601 timestamp") from exc
    if moment.tzinfo is None:
        raise CommandError(f"--as-of {text!r} needs a time zone, e.g. 2024-06-30T00:00:00+08:00")
    return moment


def _reader(settings: Settings) -> ReadViews:
    """The read side the API reads through too; the operator sees the views' own cursors."""
    from infra.bootstrap import build_read_views

    return build_read_views(settings, open_ledger(settings), sealed_cursors=False)


def cmd_board(args: argparse.Namespace, settings: Settings) -> int:
    answer = _reader(settings).board(args.policy, args.period, org=args.org,
                                     limit=args.limit, cursor=args.cursor,
                                     anonymous=args.anonymous)
    if args.json:
        print(answer.model_dump_json(indent=2))
        return EXIT_OK
    print(f"{answer.policy.id} v{answer.policy.version} {answer.period} "
          f"board of {answer.org or 'all orgs'}")
    for entry in answer.entries:
        who = entry.learner_id or ""
        print(f"  {entry.rank:>5}  {entry.score:>8.2f}  {entry.name:<6} {who:<10} {entry.org_id}")
    if answer.next_cursor:
        print(f"next page: --cursor {answer.next_cursor}")
    return EXIT_OK


def cmd_rank(args: argparse.Namespace, settings: Settings) -> int:
    answer = _reader(settings).rank(args.policy, args.period, args.learner_id, org=args.org)
    if args.json:
        _print_json(answer)
    else:
        print(f"{answer.learner_id}: rank {answer.rank} of {answer.of}, "
              f"score {answer.score} ({args.policy} {args.period})")
    return EXIT_OK


def cmd_compliance(args: argparse.Namespace, settings: Settings) -> int:
    answer = _reader(settings).compliance(args.org, args.policy, args.period)
    if args.json:
        _print_json(answer)
        return EXIT_OK
    print(f"{args.org} {args.policy} {args.period}: {len(answer.short)} of "
          f"{answer.learners_in_scope} learners short")
    for item in answer.short:
        gaps = ", ".join(f"{s.name} {s.shortfall}" for s in item.shortfalls)
        print(f"  {item.learner_id}  {item.name:<6} {item.org_id:<12} short: {gaps}")
    return EXIT_OK


def cmd_stats(args: argparse.Namespace, settings: Settings) -> int:
    _print_json(_reader(settings).org_statistics(args.org, args.policy, args.year))
    return EXIT_OK


def _history_moment(text: str | None, option: str) -> datetime | None:
    from domain.errors import InvalidMomentError
    from domain.policy.pack import load_pack
    from projections.audit_trail import parse_moment

    if not text:
        return None
    try:
        return parse_moment(text, load_pack(DEFAULT_PACK).time_zone, field=option)
    except InvalidMomentError as exc:
        raise CommandError(exc.message) from exc


def cmd_history(args: argparse.Namespace, settings: Settings) -> int:
    if args.known_at and args.as_of and args.known_at != args.as_of:
        raise CommandError("--as-of is another name for --known-at: give one of them")
    page = _reader(settings).history(
        args.learner_id, known_at=_history_moment(args.known_at or args.as_of, "--known-at"),
        happened_by=_history_moment(args.happened_by, "--happened-by"), limit=args.limit,
        cursor=args.cursor)
    asked = [f"{name} {moment.isoformat()}" for name, moment in
             (("as known at", page.asked.known_at), ("as happened by", page.asked.happened_by))
             if moment is not None]
    if asked and not args.json:
        print(f"{args.learner_id} {', '.join(asked)}", file=sys.stderr)
    if page.note:  # an empty answer is a question that reached too early, not a failure
        print(f"{args.learner_id}: {page.note}", file=sys.stderr)
    if args.json:
        print(page.model_dump_json(indent=2))
        return EXIT_OK
    for entry in page.entries:
        effects = "; ".join(f"{e.policy}:{e.category} {e.amount:+.2f} {e.year} ({e.status})"
                            for e in entry.effects)
        voided = f" VOIDED by {entry.voided_by}" if entry.voided_by else ""
        print(f"{entry.version:>4} {entry.envelope['occurred_at']} {entry.envelope['type']:<24}"
              f" {entry.hash[:12]}{voided}  {effects}")
    if page.next_cursor:
        print(f"next page: --cursor {page.next_cursor}")
    return EXIT_OK
