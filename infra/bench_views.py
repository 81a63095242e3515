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
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from tqdm import tqdm

from domain.facts import IncomingFact, parse_fact
from infra.bootstrap import build_ledger, build_projector
from infra.settings import Settings, display_url
from infra.view_queries import ViewQueries

UNITS = 20


def _envelope(fact_type: str, external_id: str, learner_id: str | None, at: str,
              payload: dict[str, Any]) -> IncomingFact:
    data: dict[str, Any] = {"type": fact_type, "source": "bench", "external_id": external_id,
                            "occurred_at": at, "actor": "platform:bench", "payload": payload}
    if learner_id is not None:
        data["learner_id"] = learner_id
    return parse_fact(data)


def _facts(learners: int, seed: int) -> Iterator[IncomingFact]:
    rng = random.Random(seed)
    yield _envelope("org.registered", "org-root", None, "2021-01-01T09:00:00+08:00",
                    {"org_id": "D", "name": "区", "parent_id": None})
    for unit in range(UNITS):
        yield _envelope("org.registered", f"org-{unit}", None, "2021-01-01T09:00:00+08:00",
                        {"org_id": f"D-{unit:02d}", "name": f"单位{unit}", "parent_id": "D"})
    for number in range(learners):
        learner = f"B{number:07d}"
        day = f"2023-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T10:00:00+08:00"
        yield _envelope("learner.registered", f"reg-{learner}", learner,
                        "2021-01-04T09:00:00+08:00",
                        {"name": "张三明", "org_id": f"D-{rng.randrange(UNITS):02d}",
                         "rank": "township_section_and_below", "category": "公务员"})
        for index in range(2):
            yield _envelope("training.attended", f"t{index}-{learner}", learner, day,
                            {"program_id": "P", "kind": "thematic",
                             "hours": rng.choice([8, 16, 24, 40, 56, 80]), "leave_hours": 0})
        yield _envelope("study_session.recorded", f"s-{learner}", learner, day,
                        {"course_id": f"C{rng.randrange(300)}", "course_hours": "2",
                         "required": True, "minutes": 90, "progress": "1"})
        if rng.random() < 0.5:
            yield _envelope("award.granted", f"a-{learner}", learner, day,
                            {"award_id": f"A-{learner}", "level": "unit", "title": "优秀"})
        else:
            yield _envelope("exam.graded", f"e-{learner}", learner, day,
                            {"exam_id": "E1", "score": rng.randint(50, 100), "pass_score": 60,
                             "attempt": 1})


def _load(settings: Settings, learners: int) -> int:
    ledger = build_ledger(settings)
    total = learners * 5 + UNITS + 1
    batch: list[IncomingFact] = []
    now = datetime.now(UTC)
    with tqdm(total=total, unit="ev", desc="load", disable=None) as bar:
        for fact in _facts(learners, seed=1):
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
    projector = build_projector(settings)
    began = time.perf_counter()
    with tqdm(total=events, unit="ev", desc="replay", disable=None) as bar:
        replayed = projector.replay(progress=bar.update)
    replay_rate = replayed / (time.perf_counter() - began)
    queries = ViewQueries(projector.views)
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
    projector.views.close()
    return 0
