"""`studyledger bench views`: replay rate and read latencies at scale.

One dataset serves both: `learners` cadres (default 200,000) under one district, five facts
each (registration, two classes, a course completion, an award or an exam), recorded
through the real write path: 1,000,000 events at the default. Then, on that store:
- replay of every view from zero, next to a plain read-and-decode of the same log (the
  floor any replay pays), both in events/s;
- p50/p99 of a top-50 board page, a learner's rank, and a stored balance lookup.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime

from tqdm import tqdm

from domain.facts import IncomingFact
from infra.bench.datasets import district_fact_count, district_facts
from infra.bootstrap import build_ledger, build_projector, build_views
from infra.settings import Settings, display_url
from infra.views.boards import BoardQueries


def _load(settings: Settings, learners: int) -> int:
    ledger = build_ledger(settings)
    total = district_fact_count(learners)
    batch: list[IncomingFact] = []
    now = datetime.now(UTC)
    with tqdm(total=total, unit="ev", desc="load", disable=None) as bar:
        for fact in district_facts(learners, seed=1):
            batch.append(fact)
            if len(batch) == 5000:
                ledger.record_facts(batch, now=now, channel="bench")
                bar.update(len(batch))
                batch.clear()
        if batch:
            ledger.record_facts(batch, now=now, channel="bench")
            bar.update(len(batch))
    count = ledger.recorder.max_notification_id() or 0
    ledger.close()
    return count


def _read_and_decode_rate(settings: Settings) -> float:
    ledger = build_ledger(settings)
    start, count, began = 1, 0, time.perf_counter()
    while page := ledger.recorder.select_notifications(start=start, limit=20_000):
        for notification in page:
            ledger.mapper.to_domain_event(notification)
        count += len(page)
        start = page[-1].id + 1
    ledger.close()
    return count / (time.perf_counter() - began)


def _latencies(action: Callable[[], object], runs: int) -> tuple[float, float]:
    timings = []
    for _ in range(runs):
        began = time.perf_counter()
        action()
        timings.append((time.perf_counter() - began) * 1000)
    timings.sort()
    return statistics.median(timings), timings[int(len(timings) * 0.99) - 1]


def run_views_bench(settings: Settings, learners: int, runs: int) -> int:
    print(f"store: {display_url(settings.database_url)} schema {settings.database_schema}",
          flush=True)
    began = time.perf_counter()
    events = _load(settings, learners)
    print(f"loaded {events:,} events in {time.perf_counter() - began:.0f} s", flush=True)
    decode_rate = _read_and_decode_rate(settings)
    views = build_views(settings)
    projector = build_projector(settings, views=views)
    began = time.perf_counter()
    with tqdm(total=events, unit="ev", desc="replay", disable=None) as bar:
        replayed = projector.replay(progress=bar.update)
    replay_rate = replayed / (time.perf_counter() - began)
    queries = BoardQueries(views)
    rng = random.Random(2)

    def some_learner() -> str:
        return f"B{rng.randrange(learners):07d}"

    board = _latencies(lambda: queries.board("dadukou-double-100", "2021-2025", org="D",
                                             limit=50), runs)
    rank = _latencies(lambda: queries.rank("dadukou-double-100", "2021-2025", some_learner(),
                                           org="D"), runs)
    balance = _latencies(lambda: queries.stored_balance(some_learner(), "dadukou-double-100",
                                                        "2021-2025"), runs)
    print(f"\n| measure | result | target |\n|---|---:|---:|\n"
          f"| replay into all views | {replay_rate:,.0f} events/s | >= 20,000 |\n"
          f"| read + decode the log alone (floor) | {decode_rate:,.0f} events/s | |\n"
          f"| top-50 board page, {learners:,} learners: p50 / p99 | "
          f"{board[0]:.1f} / {board[1]:.1f} ms | p99 <= 5 |\n"
          f"| rank of a learner: p50 / p99 | {rank[0]:.1f} / {rank[1]:.1f} ms | p99 <= 5 |\n"
          f"| stored balance lookup: p50 / p99 | {balance[0]:.2f} / {balance[1]:.2f} ms "
          f"| p99 <= 2 |")
    views.close()
    return 0
