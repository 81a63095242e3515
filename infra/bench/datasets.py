"""What the benches measure on: a generated district, and a fresh PostgreSQL schema each.

The district: one root org, `UNITS` units under it, and per learner five facts
(registration, two classes, a course completion, an award or an exam), all seeded.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg

from domain.facts import IncomingFact, parse_fact

UNITS = 20


def envelope(fact_type: str, external_id: str, learner_id: str | None, at: str,
             payload: dict[str, Any]) -> IncomingFact:
    """A validated fact from the `bench` source."""
    data: dict[str, Any] = {"type": fact_type, "source": "bench", "external_id": external_id,
                            "occurred_at": at, "actor": "platform:bench", "payload": payload}
    if learner_id is not None:
        data["learner_id"] = learner_id
    return parse_fact(data)


def district_facts(learners: int, seed: int) -> Iterator[IncomingFact]:
    """The seeded district: `district_fact_count(learners)` facts, orgs first."""
    rng = random.Random(seed)
    yield envelope("org.registered", "org-root", None, "2021-01-01T09:00:00+08:00",
                   {"org_id": "D", "name": "区", "parent_id": None})
    for unit in range(UNITS):
        yield envelope("org.registered", f"org-{unit}", None, "2021-01-01T09:00:00+08:00",
                       {"org_id": f"D-{unit:02d}", "name": f"单位{unit}", "parent_id": "D"})
    for number in range(learners):
        learner = f"B{number:07d}"
        day = f"2023-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T10:00:00+08:00"
        yield envelope("learner.registered", f"reg-{learner}", learner,
                       "2021-01-04T09:00:00+08:00",
                       {"name": "张三明", "org_id": f"D-{rng.randrange(UNITS):02d}",
                        "rank": "township_section_and_below", "category": "公务员"})
        for index in range(2):
            yield envelope("training.attended", f"t{index}-{learner}", learner, day,
                           {"program_id": "P", "kind": "thematic",
                            "hours": rng.choice([8, 16, 24, 40, 56, 80]), "leave_hours": 0})
        yield envelope("study_session.recorded", f"s-{learner}", learner, day,
                       {"course_id": f"C{rng.randrange(300)}", "course_hours": "2",
                        "required": True, "minutes": 90, "progress": "1"})
        if rng.random() < 0.5:
            yield envelope("award.granted", f"a-{learner}", learner, day,
                           {"award_id": f"A-{learner}", "level": "unit", "title": "优秀"})
        else:
            yield envelope("exam.graded", f"e-{learner}", learner, day,
                           {"exam_id": "E1", "score": rng.randint(50, 100), "pass_score": 60,
                            "attempt": 1})


def district_fact_count(learners: int) -> int:
    """How many facts `district_facts` yields for this many learners."""
    return learners * 5 + UNITS + 1


class PgSchema:
    """A schema of its own on `url` for one measure, dropped with everything in it after."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.name = f"bench_{uuid.uuid4().hex[:10]}"

    def __enter__(self) -> str:
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {self.name}")
        return self.name

    def __exit__(self, *exc: object) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {self.name} CASCADE")
