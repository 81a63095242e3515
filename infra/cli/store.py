"""`studyledger ingest`, `verify`, `project`, `replay` and `demo`: writing the store, checking
its hash chains, and keeping the read views current."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from domain.application import ChainReport, StudyLedger
from infra.cli.common import (
    EXIT_BROKEN,
    EXIT_OK,
    EXIT_REJECTED,
    CommandError,
    open_ledger,
    open_when_answering,
)
from infra.files.jsonl_ingest import IngestReport
from infra.settings import Settings, display_url

# What `studyledger demo` writes by default, and what `studyledger run` loads.
DEMO_OUT, DEMO_SEED, DEMO_LEARNERS = "var/demo.jsonl", 20210104, 500


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("ingest", help="record the facts of a JSONL file, in batches")
    p.add_argument("file", help="one JSON fact envelope per line")
    p.add_argument("--rejects", help="where rejected lines go (default FILE.rejected.jsonl)")
    p.add_argument("--batch-size", type=int, help="facts per transaction (default 1000)")
    p.add_argument("--channel", default="cli", help="how the facts arrived, kept with each")
    p.add_argument("--validate-workers", type=int, metavar="N",
                   help="processes validating lines beside the writer (default: one per "
                   "spare core for a file over 8 MiB; 0: validate in the writer's process)")
    p.set_defaults(func=cmd_ingest)

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

    p = sub.add_parser("demo", help="generate a seeded sample district and ingest it")
    p.add_argument("--out", default=DEMO_OUT, help="where to write the JSONL file "
                   "(default %(default)s)")
    p.add_argument("--seed", type=int, default=DEMO_SEED,
                   help="the same seed writes the same file, byte for byte")
    p.add_argument("--learners", type=int, default=DEMO_LEARNERS, help="cadres (default 500)")
    p.add_argument("--no-ingest", action="store_true", help="only write the file")
    p.set_defaults(func=cmd_demo)


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    path = Path(args.file)
    if not path.is_file():
        raise CommandError(f"no such file: {path}")
    return ingest_path(settings, path, rejects=Path(args.rejects) if args.rejects else None,
                       batch_size=args.batch_size, channel=args.channel,
                       validate_workers=args.validate_workers)


def ingest_path(settings: Settings, path: Path, *, rejects: Path | None = None,
                batch_size: int | None = None, channel: str = "cli",
                validate_workers: int | None = None) -> int:
    """Record a JSONL file and print what became of its lines; the exit code."""
    from infra.files.jsonl_ingest import ingest_file
    from infra.ops.fault_injection import fault_point_from

    report = ingest_file(
        open_ledger(settings), path, rejections_path=rejects,
        batch_size=batch_size or settings.batch_size, channel=channel,
        fault_point=fault_point_from(settings.fault_kill_at), validate_workers=validate_workers,
    )
    print_ingest_report(path, report)
    return EXIT_OK if report.ok else EXIT_REJECTED


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    return load_demo(settings, Path(args.out), seed=args.seed, learners=args.learners,
                     ingest=not args.no_ingest)


def load_demo(settings: Settings, out: Path, *, seed: int = DEMO_SEED,
              learners: int = DEMO_LEARNERS, ingest: bool = True) -> int:
    """Write the seeded sample district to `out` and, with `ingest`, record it."""
    from infra.sample.district import write_demo

    lines = write_demo(out, seed=seed, learners=learners)
    print(f"wrote {lines} lines of a sample district to {out}")
    if not ingest:
        return EXIT_OK
    status = ingest_path(settings, out, channel="demo")
    # The demo holds deliberately bad lines; rejecting them is the expected outcome.
    print("(the demo file holds a few deliberately bad lines: their rejections are expected)")
    return EXIT_OK if status in (EXIT_OK, EXIT_REJECTED) else status


def cmd_verify(args: argparse.Namespace, settings: Settings) -> int:
    ledger = open_ledger(settings)
    reports = [ledger.verify_learner(args.learner_id)] if args.learner_id else _verify_all(ledger)
    broken = [r for r in reports if r.broken is not None]
    print_verify_report(reports, broken, as_json=args.json)
    return EXIT_BROKEN if broken else EXIT_OK


def _verify_all(ledger: StudyLedger) -> list[ChainReport]:
    from tqdm import tqdm

    total = ledger.recorder.max_notification_id() or 0
    with tqdm(total=total, unit="ev", desc="verify", disable=None) as bar:
        return list(ledger.verify_all(on_page=bar.update))


def cmd_project(args: argparse.Namespace, settings: Settings) -> int:
    from infra.bootstrap import build_projector, stop_on_signals
    from infra.ops.metrics_wiring import serve_store_metrics
    from infra.serve import keep_views_current

    if args.once:
        projector = build_projector(settings, open_ledger(settings))
        applied = projector.run_once()
        print(f"projected {applied} facts; views at position {projector.views.position()}")
        return EXIT_OK
    stop = stop_on_signals()
    # The runner says when it stands by, takes over, waits for the store or stalls.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    started = open_when_answering(settings, lambda ledger: build_projector(settings, ledger),
                                  stop=stop, log=logging.getLogger("studyledger.project"))
    if started is None:
        return EXIT_OK  # stopped while waiting for the store
    projector = started
    serve_store_metrics(settings, views=True)
    print(f"projecting {display_url(settings.database_url)} (lag {projector.lag()}); "
          "Ctrl-C to stop", flush=True)
    keep_views_current(projector, stop, args.poll,
                       progress=lambda n: print(f"applied {n} facts, position "
                                                f"{projector.views.position()}", flush=True))
    print(f"stopped at position {projector.views.position()}")
    return EXIT_OK


def cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    from tqdm import tqdm

    from infra.bootstrap import build_projector
    from infra.store.runner_lease import LeaseHeldError

    projector = build_projector(settings, open_ledger(settings))
    total = projector.ledger.recorder.max_notification_id() or 0
    try:
        with tqdm(total=total, unit="ev", desc="replay", disable=None) as bar:
            applied = projector.replay(progress=bar.update)
    except LeaseHeldError as exc:
        raise CommandError(str(exc)) from exc
    print(f"rebuilt every view from {applied} facts; position {projector.views.position()}")
    from infra.xapi.maintenance import replay_statements

    statements, position = replay_statements(settings)
    print(f"rebuilt the xAPI query tables from {statements} statements; position {position}")
    return EXIT_OK


def print_ingest_report(path: Path, report: IngestReport) -> None:
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


def _print_hash_comparison(report: IngestReport) -> None:
    """For exported lines: did each fact get here the hash it had where it came from?"""
    compared = report.hash_same + len(report.hash_differs)
    if not compared:
        return
    print(f"hash chain: {report.hash_same} of {compared} exported facts have their exported hash")
    for line in report.hash_differs[:10]:
        print(f"  line {line}: recorded with another hash than exported: its stream here "
              "holds other facts before it", file=sys.stderr)


def print_verify_report(reports: list[ChainReport], broken: list[ChainReport], *,
                        as_json: bool) -> None:
    links = sum(r.links_checked for r in reports)
    human = sys.stderr if as_json else sys.stdout  # with --json, stdout is JSON alone
    for report in broken:
        assert report.broken is not None
        event = f" event {report.broken.event_id}" if report.broken.event_id else ""
        print(f"BROKEN {report.label}: first broken link at version "
              f"{report.broken.version}{event}: {report.broken.reason}", file=human)
    if as_json:
        print(json.dumps({"streams": len(reports), "links_verified": links,
                          "broken": [_broken_json(r) for r in broken]}, indent=2))
    print(f"verified {len(reports)} streams, {links} links intact, {len(broken)} broken",
          file=human)


def _broken_json(report: ChainReport) -> dict[str, Any]:
    link = report.broken
    assert link is not None
    return {"stream": report.label, "stream_id": str(report.stream_id), "version": link.version,
            "event_id": str(link.event_id) if link.event_id else None, "reason": link.reason}
