"""`studyledger parked` and `studyledger dead-letters`: what waits for a prerequisite, what
was given up on, and sending it again once the cause is fixed."""

from __future__ import annotations

import argparse
import json
from typing import Any

from domain.parking import ParkedFact
from infra.cli.common import EXIT_OK, EXIT_REJECTED, open_ledger
from infra.files.jsonl_ingest import utc_now
from infra.settings import Settings


def _fact_summary(fact: ParkedFact) -> dict[str, Any]:
    body = json.loads(fact.fact_text)
    return {
        "event_id": str(fact.event_id), "type": body.get("type"),
        "learner_id": body.get("learner_id"), "source": body.get("source"),
        "external_id": body.get("external_id"), "waits_for": fact.waits_for,
        "code": fact.code, "field": fact.field, "reason": fact.reason,
        "channel": fact.channel, "origin": json.loads(fact.origin) if fact.origin else None,
        "parked_at": fact.parked_at.isoformat(),
    }


def _print_facts(rows: list[dict[str, Any]], as_json: bool, empty: str) -> None:
    if as_json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    if not rows:
        print(empty)
    for row in rows:
        who = row["learner_id"] or "(org fact)"
        print(f"{row['parked_at'][:19]}  {row['type']:<24} {who:<12} waits for "
              f"{row['waits_for']}: {row['reason']}")


def cmd_parked(args: argparse.Namespace, settings: Settings) -> int:
    ledger = open_ledger(settings)
    if args.expire:
        expired = ledger.expire_parked(utc_now())
        print(f"{len(expired)} parked facts waited past the timeout and are now dead letters")
    total = ledger.parked_count()
    rows = [_fact_summary(f) for f in ledger.parked(args.limit)]
    _print_facts(rows, args.json, "nothing is parked")
    if not args.json and total > len(rows):
        print(f"... {total - len(rows)} more (of {total}); use --limit")
    return EXIT_OK


def cmd_dead_letters(args: argparse.Namespace, settings: Settings) -> int:
    ledger = open_ledger(settings)
    if args.action == "list":
        letters = ledger.parking_index.list_dead_letters(unresolved=not args.all,
                                                         limit=args.limit)
        rows = [_fact_summary(d.fact) | {"dead_at": d.dead_at.isoformat(),
                                         "resolved": d.resolved} for d in letters]
        _print_facts(rows, args.json, "no dead letters in the store")
        return EXIT_OK
    report = ledger.redrive(utc_now())
    print(f"redrive, store dead letters: {_counts(report.counts)}")
    for letter, result in report.failures[:20]:
        error = result.error
        print(f"  still refused: {letter.fact.event_id}: "
              f"{error.code if error else result.status}: {error.message if error else ''}")
    refused = len(report.failures)
    if settings.kafka_bootstrap and not args.store_only:
        refused += _redrive_topic(ledger, settings)
    return EXIT_REJECTED if refused else EXIT_OK


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "none"


def _redrive_topic(ledger: Any, settings: Settings) -> int:
    from consumers.redrive import redrive_messages
    from infra.bootstrap import kafka_client_id
    from infra.cli.kafka_cmds import kafka_errors
    from infra.kafka_io import read_dead_letters

    with kafka_errors(settings):
        messages = read_dead_letters(settings, kafka_client_id(settings, "redrive"))
    report = redrive_messages(ledger, messages, clock=utc_now)
    print(f"redrive, topic {settings.kafka_topic_dead_letters} ({len(messages)} messages): "
          f"{_counts(report.counts)}")
    for letter in report.still_refused[:20]:
        where = f"{letter.message.topic}/{letter.message.partition}@{letter.message.offset}"
        print(f"  still refused: {where}: {letter.code}: {letter.reason}")
    return len(report.still_refused)


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("parked", help="facts waiting for a prerequisite (learner, org, "
                       "submission, void target), oldest first")
    p.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    p.add_argument("--json", action="store_true", help="one JSON array")
    p.add_argument("--expire", action="store_true",
                   help="first turn facts parked longer than STUDYLEDGER_PARK_TIMEOUT_SECONDS "
                   "into dead letters")
    p.set_defaults(func=cmd_parked)
    p = sub.add_parser("dead-letters", help="parked facts given up on: list, or redrive "
                       "(send them again once the cause is fixed; idempotent)")
    p.add_argument("action", choices=["list", "redrive"],
                   help="list what was given up on, or send it again")
    p.add_argument("--all", action="store_true", help="list: resolved ones too")
    p.add_argument("--limit", type=int, default=100, help="list: at most this many")
    p.add_argument("--json", action="store_true", help="list: one JSON array")
    p.add_argument("--store-only", action="store_true",
                   help="redrive: only the store's dead letters, not the Kafka dead-letter "
                   "topic (read whole when STUDYLEDGER_KAFKA_BOOTSTRAP is set)")
    p.set_defaults(func=cmd_dead_letters)
