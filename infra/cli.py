"""The `studyledger` command line. Every failure ends in one clear line and a non-zero exit."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from eventsourcing.persistence import PersistenceError
from pydantic import ValidationError

from domain.credits.balance import BalanceAnswer
from domain.errors import StudyLedgerError
from domain.policy.pack import DEFAULT_PACK, SHIPPED_PACKS
from infra import cli_audit
from infra.cli_common import (
    EXIT_BROKEN,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_REJECTED,
    EXIT_USAGE,
    CommandError,
    exit_codes_help,
    open_ledger,
    package_version,
)
from infra.cli_export import add_export_command
from infra.cli_kafka import cmd_consume, cmd_relay, cmd_topics
from infra.cli_parking import add_parking_commands
from infra.cli_serve import cmd_keys, cmd_run, cmd_serve
from infra.doctor import add_doctor_command
from infra.settings import Settings, display_url


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    from infra.fault_injection import fault_point_from
    from infra.ingest import ingest_file

    path = Path(args.file)
    if not path.is_file():
        raise CommandError(f"no such file: {path}")
    report = ingest_file(
        open_ledger(settings), path, rejections_path=Path(args.rejects) if args.rejects else None,
        batch_size=args.batch_size or settings.batch_size, channel=args.channel,
        fault_point=fault_point_from(settings.fault_kill_at),
    )
    print(f"{path}: {report.lines} lines: {report.stored} stored, "
          f"{report.duplicate} duplicate, {report.parked} parked, {report.rejected} rejected")
    for line, waits_for in report.still_waiting[:10]:
        print(f"  line {line}: parked, waiting for {waits_for}", file=sys.stderr)
    _print_hash_comparison(report)
    if report.parked:
        print(f"{report.parked} facts wait for a prerequisite not recorded yet; they are "
              "recorded when it arrives (`studyledger parked` lists them)", file=sys.stderr)
    for rejection in report.first_rejections:
        where = f" [{rejection.field}]" if rejection.field else ""
        print(f"  line {rejection.line}: {rejection.code}{where}: {rejection.reason}",
              file=sys.stderr)
    if report.rejections_path is not None:
        print(f"rejected lines with reasons: {report.rejections_path}", file=sys.stderr)
    return EXIT_OK if report.ok else EXIT_REJECTED


def _print_hash_comparison(report: Any) -> None:
    """For exported lines: did each fact get here the hash it had where it came from?"""
    compared = report.hash_same + len(report.hash_differs)
    if not compared:
        return
    print(f"hash chain: {report.hash_same} of {compared} exported facts have their exported hash")
    for line in report.hash_differs[:10]:
        print(f"  line {line}: recorded with another hash than exported: its stream here "
              "holds other facts before it", file=sys.stderr)


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


def cmd_verify(args: argparse.Namespace, settings: Settings) -> int:
    ledger = open_ledger(settings)
    if args.learner_id:
        reports = [ledger.verify_learner(args.learner_id)]
    else:
        from tqdm import tqdm

        total = ledger.recorder.max_notification_id() or 0
        with tqdm(total=total, unit="ev", desc="verify", disable=None) as bar:
            reports = list(ledger.verify_all(on_page=bar.update))
    broken = [r for r in reports if r.broken is not None]
    links = sum(r.links_checked for r in reports)
    human = sys.stderr if args.json else sys.stdout  # with --json, stdout is JSON alone
    for report in broken:
        assert report.broken is not None
        event = f" event {report.broken.event_id}" if report.broken.event_id else ""
        print(f"BROKEN {report.label}: first broken link at version "
              f"{report.broken.version}{event}: {report.broken.reason}", file=human)
    if args.json:
        print(json.dumps({"streams": len(reports), "links_verified": links,
                          "broken": [_broken_json(r) for r in broken]}, indent=2))
    print(f"verified {len(reports)} streams, {links} links intact, {len(broken)} broken",
          file=human)
    return EXIT_BROKEN if broken else EXIT_OK


def _broken_json(report: Any) -> dict[str, Any]:
    link = report.broken
    return {"stream": report.label, "stream_id": str(report.stream_id), "version": link.version,
            "event_id": str(link.event_id) if link.event_id else None, "reason": link.reason}


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from infra.demo import write_demo

    out = Path(args.out)
    lines = write_demo(out, seed=args.seed, learners=args.learners)
    print(f"wrote {lines} lines of a sample district to {out}")
    if args.no_ingest:
        return EXIT_OK
    args.file, args.rejects, args.batch_size, args.channel = str(out), None, None, "demo"
    status = cmd_ingest(args, settings)
    # The demo holds deliberately bad lines; rejecting them is the expected outcome.
    print("(the demo file holds a few deliberately bad lines: their rejections are expected)")
    return EXIT_OK if status in (EXIT_OK, EXIT_REJECTED) else status


def cmd_project(args: argparse.Namespace, settings: Settings) -> int:
    import logging
    import signal
    import threading

    from infra.bootstrap import build_projector
    from infra.metrics_wiring import serve_store_metrics

    projector = build_projector(settings, open_ledger(settings))
    if args.once:
        applied = projector.run_once()
        print(f"projected {applied} facts; views at position {projector.views.position()}")
        return EXIT_OK
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())  # finish the batch in hand, then exit
    serve_store_metrics(settings, views=True)
    # The runner says when it stands by, takes over, waits for the store or stalls.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    print(f"projecting {display_url(settings.database_url)} (lag {projector.lag()}); "
          "Ctrl-C to stop", flush=True)
    projector.run_forever(stop, poll_seconds=args.poll,
                          progress=lambda n: print(f"applied {n} facts, position "
                                                   f"{projector.views.position()}", flush=True))
    print(f"stopped at position {projector.views.position()}")
    return EXIT_OK


def cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    from tqdm import tqdm

    from infra.bootstrap import build_projector
    from infra.runner_lease import LeaseHeldError

    projector = build_projector(settings, open_ledger(settings))
    total = projector.ledger.recorder.max_notification_id() or 0
    try:
        with tqdm(total=total, unit="ev", desc="replay", disable=None) as bar:
            applied = projector.replay(progress=bar.update)
    except LeaseHeldError as exc:
        raise CommandError(str(exc)) from exc
    print(f"rebuilt every view from {applied} facts; position {projector.views.position()}")
    return EXIT_OK


def _queries(settings: Settings) -> Any:
    from infra.bootstrap import build_views
    from infra.view_queries import ViewQueries

    return ViewQueries(build_views(settings))


def cmd_board(args: argparse.Namespace, settings: Settings) -> int:
    answer = _queries(settings).board(args.policy, args.period, org=args.org,
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
    answer = _queries(settings).rank(args.policy, args.period, args.learner_id, org=args.org)
    if args.json:
        print(json.dumps(answer, indent=2, ensure_ascii=False))
    else:
        print(f"{answer['learner_id']}: rank {answer['rank']} of {answer['of']}, "
              f"score {answer['score']} ({args.policy} {args.period})")
    return EXIT_OK


def cmd_compliance(args: argparse.Namespace, settings: Settings) -> int:
    from infra.bootstrap import build_views
    from infra.view_queries import compliance

    answer = compliance(build_views(settings), open_ledger(settings), args.org, args.policy,
                        args.period)
    if args.json:
        print(json.dumps(answer, indent=2, ensure_ascii=False))
        return EXIT_OK
    print(f"{args.org} {args.policy} {args.period}: {len(answer['short'])} of "
          f"{answer['learners_in_scope']} learners short")
    for item in answer["short"]:
        gaps = ", ".join(f"{s['name']} {s['shortfall']}" for s in item["shortfalls"])
        print(f"  {item['learner_id']}  {item['name']:<6} {item['org_id']:<12} short: {gaps}")
    return EXIT_OK


def cmd_stats(args: argparse.Namespace, settings: Settings) -> int:
    from infra.bootstrap import build_views
    from infra.view_queries import org_statistics

    answer = org_statistics(build_views(settings), args.org, args.policy, args.year)
    print(json.dumps(answer, indent=2, ensure_ascii=False))
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
    from infra.view_queries import history

    if args.known_at and args.as_of and args.known_at != args.as_of:
        raise CommandError("--as-of is another name for --known-at: give one of them")
    page = history(open_ledger(settings), args.learner_id,
                   known_at=_history_moment(args.known_at or args.as_of, "--known-at"),
                   happened_by=_history_moment(args.happened_by, "--happened-by"),
                   limit=args.limit, cursor=args.cursor)
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


def cmd_bench(args: argparse.Namespace, settings: Settings) -> int:
    from infra.bench import DEFAULT_PG, PgSchema, run_ingest_bench

    if args.what == "ingest":
        return run_ingest_bench(
            postgres_url=args.postgres_url, repeats=args.repeats, learners=args.learners or 500,
            skip_postgres=args.sqlite_only,
        )
    if args.what == "kafka":
        from infra.bench_kafka import run_kafka_bench

        url = args.postgres_url or os.environ.get("STUDYLEDGER_TEST_DATABASE_URL") or DEFAULT_PG
        return run_kafka_bench(url, learners=args.learners or 10_000,
                               partitions=args.partitions)
    if args.what == "api":
        from infra.bench_api import run_api_bench

        url = args.postgres_url or os.environ.get("STUDYLEDGER_TEST_DATABASE_URL") or DEFAULT_PG
        with PgSchema(url) as schema:
            return run_api_bench(Settings(database_url=url, database_schema=schema),
                                 learners=args.learners or 2000, seconds=args.seconds,
                                 connections=args.connections, workers=args.workers,
                                 port=args.port)
    from infra.bench_views import run_views_bench

    learners = args.learners or 200_000
    if args.sqlite_only:
        import tempfile

        with tempfile.TemporaryDirectory(prefix="studyledger-bench-") as tmp:
            return run_views_bench(Settings(database_url=f"sqlite:///{tmp}/views.db"),
                                   learners, args.runs)
    url = args.postgres_url or os.environ.get("STUDYLEDGER_TEST_DATABASE_URL") or DEFAULT_PG
    with PgSchema(url) as schema:
        return run_views_bench(Settings(database_url=url, database_schema=schema), learners,
                               args.runs)


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

    p = sub.add_parser("run", help="load the demo district into an empty store, then serve")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("serve", help="serve the HTTP API, with the projections running")
    p.add_argument("--host", help="default STUDYLEDGER_API_HOST or 127.0.0.1")
    p.add_argument("--port", type=int, help="default STUDYLEDGER_API_PORT or 8000")
    p.add_argument("--workers", type=int, help="worker processes (default 1)")
    p.add_argument("--no-project", action="store_true",
                   help="do not run the projections here (run `studyledger project` apart)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("keys", help="API keys: create (prints the key alone), list, revoke")
    keys_sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    k = keys_sub.add_parser("create", help="make a key; prints it alone on stdout")
    k.add_argument("--role", required=True, choices=["platform", "reviewer", "admin", "auditor"],
                   help="what the key may do (README: HTTP API, roles)")
    k.add_argument("--org", required=True, help="the org whose subtree the key covers")
    k.add_argument("--source", help="platform keys: the source their facts carry")
    k.set_defaults(func=cmd_keys)
    k = keys_sub.add_parser("list", help="every key (never the secret)")
    k.set_defaults(func=cmd_keys)
    k = keys_sub.add_parser("revoke", help="revoke a key by its id")
    k.add_argument("key_id", help="the id `keys list` shows (never the secret)")
    k.set_defaults(func=cmd_keys)

    p = sub.add_parser("consume", help="Kafka studyledger.events -> the store; bad messages "
                       "to the dead-letter topic")
    p.add_argument("--until-idle", type=float, metavar="SECONDS",
                   help="stop once no message arrived for this long (default: run until "
                   "SIGTERM)")
    p.set_defaults(func=cmd_consume)

    p = sub.add_parser("relay", help="publish every recorded fact to studyledger.recorded")
    p.add_argument("--once", action="store_true", help="stop when caught up")
    p.add_argument("--poll", type=float, default=0.5, help="seconds between polls when idle")
    p.add_argument("--batch-size", type=int, default=1000,
                   help="facts per publish batch; the position is stored after each")
    p.set_defaults(func=cmd_relay)

    p = sub.add_parser("topics", help="Kafka topics: `topics create` makes the three topics")
    p.add_argument("action", choices=["create"], help="create the three topics")
    p.add_argument("--partitions", type=int, default=6,
                   help="partitions per topic (default 6); learners spread over them")
    p.add_argument("--replication-factor", type=int, default=1,
                   help="copies of each partition (default 1; 3 on a production cluster)")
    p.set_defaults(func=cmd_topics)

    add_parking_commands(sub)
    add_export_command(sub)
    add_doctor_command(sub)
    p = sub.add_parser("ingest", help="record the facts of a JSONL file, in batches")
    p.add_argument("file", help="one JSON fact envelope per line")
    p.add_argument("--rejects", help="where rejected lines go (default FILE.rejected.jsonl)")
    p.add_argument("--batch-size", type=int, help="facts per transaction (default 1000)")
    p.add_argument("--channel", default="cli", help="how the facts arrived, kept with each")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("balance", help="a learner's credit balance for a cycle or a year")
    p.add_argument("learner_id", help="the learner, e.g. L000042")
    p.add_argument("--policy", default=DEFAULT_PACK, choices=SHIPPED_PACKS,
                   help="policy pack (default %(default)s)")
    p.add_argument("--period", required=True, help="a cycle (2021-2025) or a year (2023)")
    p.add_argument("--as-of", help="only facts recorded by this time (ISO 8601 with zone)")
    p.add_argument("--json", action="store_true", help="the balance answer as JSON")
    p.set_defaults(func=cmd_balance)

    p = sub.add_parser("verify", help="recompute hash chains; name the first broken link")
    p.add_argument("learner_id", nargs="?", help="one learner (default: every stream)")
    p.add_argument("--json", action="store_true", help="one JSON report on stdout")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("project", help="keep the read views current (polls the log)")
    p.add_argument("--once", action="store_true", help="stop when caught up")
    p.add_argument("--poll", type=float, default=0.5, help="seconds between polls when idle")
    p.set_defaults(func=cmd_project)

    p = sub.add_parser("replay", help="rebuild every read view from position zero")
    p.set_defaults(func=cmd_replay)

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

    p = sub.add_parser("compliance", help="learners of an org subtree short of a requirement")
    p.add_argument("org", help="the org whose subtree is checked")
    p.add_argument("--policy", default=DEFAULT_PACK, choices=SHIPPED_PACKS,
                   help="policy pack (default %(default)s)")
    p.add_argument("--period", required=True, help="a cycle (2021-2025) or a year (2023)")
    p.add_argument("--json", action="store_true", help="the answer as JSON")
    p.set_defaults(func=cmd_compliance)

    p = sub.add_parser("stats", help="an org subtree's statistics for a year (JSON)")
    p.add_argument("org", help="the org whose subtree is counted")
    p.add_argument("--policy", default=DEFAULT_PACK, choices=SHIPPED_PACKS,
                   help="policy pack (default %(default)s)")
    p.add_argument("--year", type=int, required=True, help="the calendar year, e.g. 2024")
    p.set_defaults(func=cmd_stats)

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

    p = sub.add_parser("demo", help="generate a seeded sample district and ingest it")
    p.add_argument("--out", default="var/demo.jsonl", help="where to write the JSONL file "
                   "(default %(default)s)")
    p.add_argument("--seed", type=int, default=20210104,
                   help="the same seed writes the same file, byte for byte")
    p.add_argument("--learners", type=int, default=500, help="cadres (default 500)")
    p.add_argument("--no-ingest", action="store_true", help="only write the file")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("bench", help="measure ingest (vs raw INSERT) or views (replay, reads)")
    p.add_argument("what", nargs="?", choices=["ingest", "views", "api", "kafka"],
                   default="ingest", help="what to measure (default ingest)")
    p.add_argument("--postgres-url", help="PostgreSQL to measure (default: "
                   "STUDYLEDGER_TEST_DATABASE_URL or postgresql://postgres@127.0.0.1:5432/test)")
    p.add_argument("--sqlite-only", action="store_true", help="skip PostgreSQL")
    p.add_argument("--repeats", type=int, default=3, help="ingest: runs per store (median)")
    p.add_argument("--learners", type=int,
                   help="ingest: 500; views: 200000; api: 2000; kafka: 10000 (5 facts each)")
    p.add_argument("--runs", type=int, default=1000, help="views: queries timed per measure")
    p.add_argument("--seconds", type=float, default=10, help="api: seconds per measure")
    p.add_argument("--connections", type=int, default=16, help="api: concurrent GETs")
    p.add_argument("--workers", type=int, default=1, help="api: server worker processes")
    p.add_argument("--port", type=int, default=8765, help="api: loopback port to serve on")
    p.add_argument("--partitions", type=int, default=6, help="kafka: partitions of the topic")
    p.set_defaults(func=cmd_bench)

    cli_audit.add_parser(sub)
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
