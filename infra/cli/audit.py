"""`studyledger audit-log`: who read whose record, from the read audit table."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from datetime import datetime

from infra.cli.common import EXIT_OK, CommandError
from infra.settings import Settings


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("audit-log", help="reads of learners' records (key ids, never keys)")
    p.add_argument("--learner", help="only reads of this learner")
    p.add_argument("--key", help="only reads by this key id")
    p.add_argument("--since", help="only reads at or after this time (ISO 8601 with offset)")
    p.add_argument("--limit", type=int, default=100, help="newest N (default 100)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=cmd_audit_log)


def cmd_audit_log(args: argparse.Namespace, settings: Settings) -> int:
    from infra.store.read_audit import ReadAuditStore

    since = None
    if args.since:
        try:
            since = datetime.fromisoformat(args.since)
        except ValueError as exc:
            raise CommandError(f"--since {args.since!r}: not an ISO 8601 time") from exc
        if since.tzinfo is None:
            raise CommandError(f"--since {args.since!r}: needs an offset (+08:00 or Z)")
    if args.limit < 1:
        raise CommandError("--limit must be 1 or more")
    store = ReadAuditStore(settings)
    try:
        entries = store.entries(learner_id=args.learner, key_id=args.key, since=since,
                                limit=args.limit)
    finally:
        store.close()
    for entry in entries:
        if args.json:
            print(json.dumps(asdict(entry) | {"at": entry.at.isoformat()}, ensure_ascii=False))
        else:
            print(f"{entry.at.isoformat(timespec='seconds')}  key {entry.key_id}  "
                  f"{entry.role:<8} org {entry.org_id:<10} {entry.method} {entry.route}  "
                  f"learner {entry.learner_id}  {entry.status}")
    return EXIT_OK
