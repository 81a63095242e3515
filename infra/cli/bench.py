"""`studyledger bench`: ingest, views, HTTP and Kafka measured beside same-run baselines."""

from __future__ import annotations

import argparse
import tempfile

from infra.cli.common import CommandError
from infra.settings import Settings


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("bench", help="measure ingest (vs raw INSERT) or views (replay, reads)")
    p.add_argument("what", nargs="?", choices=["ingest", "views", "api", "kafka", "lag"],
                   default="ingest", help="what to measure (default ingest)")
    p.add_argument("--postgres-url", help="PostgreSQL to measure (default: "
                   "STUDYLEDGER_TEST_DATABASE_URL or postgresql://postgres@127.0.0.1:5432/test)")
    p.add_argument("--sqlite-only", action="store_true", help="skip PostgreSQL")
    p.add_argument("--repeats", type=int, default=3, help="ingest: runs per store (median)")
    p.add_argument("--learners", type=int,
                   help="ingest, lag: 500 (the demo district); views: 200000; api: 2000; "
                   "kafka: 10000 (5 facts each)")
    p.add_argument("--runs", type=int, default=1000, help="views: queries timed per measure")
    p.add_argument("--seconds", type=float, default=10, help="api: seconds per measure")
    p.add_argument("--connections", type=int, default=16, help="api: concurrent GETs")
    p.add_argument("--workers", type=int, default=1, help="api: server worker processes")
    p.add_argument("--port", type=int, default=8765, help="api: loopback port to serve on")
    p.add_argument("--partitions", type=int, default=6, help="kafka: partitions of the topic")
    p.add_argument("--rate", type=int, default=5000,
                   help="lag: facts recorded per second while the views follow")
    p.set_defaults(func=cmd_bench)


def cmd_bench(args: argparse.Namespace, settings: Settings) -> int:
    from infra.bench import BenchSetupError

    bench = {"ingest": _bench_ingest, "kafka": _bench_kafka, "api": _bench_api,
             "views": _bench_views, "lag": _bench_lag}[args.what]
    try:
        return bench(args, args.postgres_url or settings.test_database_url)
    except BenchSetupError as exc:
        raise CommandError(str(exc)) from exc


def _bench_ingest(args: argparse.Namespace, postgres_url: str) -> int:
    from infra.bench.ingest import run_ingest_bench

    return run_ingest_bench(postgres_url=postgres_url, repeats=args.repeats,
                            learners=args.learners or 500, skip_postgres=args.sqlite_only)


def _bench_lag(args: argparse.Namespace, postgres_url: str) -> int:
    from infra.bench.lag import run_lag_bench

    return run_lag_bench(postgres_url=postgres_url, rate=args.rate,
                         learners=args.learners or 500, skip_postgres=args.sqlite_only)


def _bench_kafka(args: argparse.Namespace, postgres_url: str) -> int:
    from infra.bench.kafka_pipeline import run_kafka_bench

    return run_kafka_bench(postgres_url, learners=args.learners or 10_000,
                           partitions=args.partitions)


def _bench_api(args: argparse.Namespace, postgres_url: str) -> int:
    from infra.bench.api import run_api_bench
    from infra.bench.datasets import PgSchema

    with PgSchema(postgres_url) as schema:
        return run_api_bench(Settings(database_url=postgres_url, database_schema=schema),
                             learners=args.learners or 2000, seconds=args.seconds,
                             connections=args.connections, workers=args.workers,
                             port=args.port)


def _bench_views(args: argparse.Namespace, postgres_url: str) -> int:
    from infra.bench.datasets import PgSchema
    from infra.bench.views import run_views_bench

    learners = args.learners or 200_000
    if args.sqlite_only:
        with tempfile.TemporaryDirectory(prefix="studyledger-bench-") as tmp:
            return run_views_bench(Settings(database_url=f"sqlite:///{tmp}/views.db"),
                                   learners, args.runs)
    with PgSchema(postgres_url) as schema:
        return run_views_bench(Settings(database_url=postgres_url, database_schema=schema),
                               learners, args.runs)
