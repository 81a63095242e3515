"""A realistic, seeded sample district: orgs, ~500 cadres, five years of every fact type.

The same seed always writes the same file, byte for byte. A few deliberately bad lines are
mixed in (one of each kind the ingest must reject) so a demo run shows the rejection path.

Under dadukou-double-100 a cadre meets the cycle only with every comprehensive cap filled
(self-study 40, theory 20, performance 40), which random study alone almost never reaches.
So each cadre follows a profile: most do the unit's yearly programme (one 80-hour class,
study group, course, report, article, the yearly performance review) and meet every annual
check; some do only part of it and end the cycle short; a few miss the programme in one
year and make it up in the next, so their promotion the year after reads make_up_required.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from domain.identity import fact_event_id

CST = timezone(timedelta(hours=8))
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾"
    "肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢"
)
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建文辉力鹏宇浩凯晨欣怡"
ORGS = [
    ("5001", "重庆市委组织部", None),
    ("500104", "大渡口区委组织部", "5001"),
    ("500104-01", "区教育委员会", "500104"),
    ("500104-02", "区财政局", "500104"),
    ("500104-03", "区卫生健康委员会", "500104"),
    ("500104-04", "区第一中学", "500104-01"),
    ("500104-05", "区实验小学", "500104-01"),
    ("500104-06", "新山村街道办事处", "500104"),
    ("500104-07", "跃进村街道办事处", "500104"),
    ("500104-08", "区发展和改革委员会", "500104"),
]
UNITS = [org[0] for org in ORGS[2:]]
LEVELS = ["unit", "district", "city", "province", "national"]
PROFILES = ("compliant", "short", "late")
PROFILE_WEIGHTS = (70, 20, 10)


class DemoWriter:
    def __init__(self, seed: int, learners: int, first_year: int, years: int) -> None:
        self.rng = random.Random(seed)
        self.learners = learners
        self.first_year = first_year
        self.years = years
        self.facts: list[tuple[datetime, int, dict[str, Any]]] = []
        self.counter = 0

    def add(self, fact_type: str, source: str, when: datetime, payload: dict[str, Any],
            learner_id: str | None = None, actor: str | None = None) -> dict[str, Any]:
        self.counter += 1
        envelope: dict[str, Any] = {
            "type": fact_type, "source": source, "external_id": f"{fact_type}-{self.counter}",
            "occurred_at": when.isoformat(), "actor": actor or f"platform:{source}",
            "payload": payload,
        }
        if learner_id is not None:
            envelope["learner_id"] = learner_id
        self.facts.append((when, self.counter, envelope))
        return envelope

    def moment(self, year: int, month_from: int = 1, month_to: int = 12) -> datetime:
        # Study starts on the 5th: registrations happen on the 4th of the first January.
        start = datetime(year, month_from, 5, 8, 0, tzinfo=CST)
        end = datetime(year, month_to, 28, 20, 0, tzinfo=CST)
        return (start + (end - start) * self.rng.random()).replace(microsecond=0)

    def generate(self) -> list[dict[str, Any]]:
        start = datetime(self.first_year, 1, 4, 9, 0, tzinfo=CST)
        for index, (org_id, name, parent) in enumerate(ORGS):
            self.add("org.registered", "hr-system", start + timedelta(minutes=index),
                     {"org_id": org_id, "name": name, "parent_id": parent})
        self.add("org.board_published", "hr-system", start + timedelta(hours=1),
                 {"org_id": "500104", "published": True}, actor="admin:zzb-500104")
        for number in range(1, self.learners + 1):
            self.learner(f"L{number:06d}", start + timedelta(hours=2, seconds=number))
        self.facts.sort(key=lambda item: (item[0], item[1]))
        return [envelope for _, _, envelope in self.facts]

    def learner(self, learner_id: str, registered_at: datetime) -> None:
        rng = self.rng
        name = rng.choice(SURNAMES) + "".join(rng.choices(GIVEN, k=rng.choice([1, 2])))
        rank = "county_division_and_above" if rng.random() < 0.2 else "township_section_and_below"
        org_id = rng.choice(UNITS)
        self.add("learner.registered", "hr-system", registered_at, {
            "name": name, "org_id": org_id, "rank": rank,
            "category": rng.choice(["公务员", "参公人员", "事业单位人员", "教师"]),
        }, learner_id)
        diligence = rng.uniform(0.3, 1.2)  # some cadres study far more than others
        profile = rng.choices(PROFILES, weights=PROFILE_WEIGHTS)[0]
        # A late cadre misses the programme in one year (never the last) and doubles it the
        # next; extra classes would hide the miss, so a late cadre takes none.
        missed = self.first_year + rng.randrange(max(1, self.years - 1))
        for year in range(self.first_year, self.first_year + self.years):
            if profile == "late":
                rounds = 0 if year == missed else 2 if year == missed + 1 else 1
            else:
                rounds = 1
            self.programme(learner_id, year, profile, rounds)
            self.year_of_study(learner_id, year, diligence, profile)
        if int(learner_id[1:]) % 7 == 3:  # one in seven rotates to another unit (交流轮岗)
            year = self.first_year + rng.randrange(self.years)
            self.add("learner.transferred", "hr-system", self.moment(year),
                     {"org_id": rng.choice([u for u in UNITS if u != org_id])}, learner_id)

    def programme(self, learner_id: str, year: int, profile: str, rounds: int) -> None:
        """The unit's yearly programme, done `rounds` times over (a short cadre does half)."""
        index = year - self.first_year
        for round_ in range(rounds):
            if profile == "short" and self.rng.random() < 0.5:
                continue
            self.training(learner_id, year, hours=80)  # basic 20: the annual share
            self.declaration(learner_id, year, hours=8, activity="theory_group_study")
            self.course(learner_id, year, f"C{1000 + index * 10 + round_:04d}", complete=True)
            self.assignment(learner_id, year, kind="research_report", accepted=True)
            if profile != "short":  # the reviews and articles a short cadre never gets
                self.achievement(learner_id, year, "unit")
                self.award(learner_id, year, "unit", "年度工作实绩考核优良")
                if (index + round_) % 2 == 1:  # a made-up year keeps the count of these
                    self.award(learner_id, year, "district", "区级先进工作者")

    def year_of_study(self, learner_id: str, year: int, diligence: float, profile: str) -> None:
        rng = self.rng
        for _ in range(rng.randint(0, round(3 * diligence)) if profile != "late" else 0):
            self.training(learner_id, year)
        for _ in range(rng.randint(1, max(1, round(7 * diligence)))):
            self.course(learner_id, year)
        for _ in range(rng.randint(0, 3)):
            self.exam(learner_id, year)
        for _ in range(rng.randint(0, 2)):
            self.assignment(learner_id, year)
        if rng.random() < 0.5:
            self.declaration(learner_id, year)
        if rng.random() < 0.12:
            self.achievement(learner_id, year, rng.choices(LEVELS, weights=[50, 30, 12, 6, 2])[0])
        if rng.random() < 0.18:
            self.award(learner_id, year, rng.choices(LEVELS, weights=[50, 30, 12, 6, 2])[0],
                       "年度优秀共产党员")
        # Penalties and downward corrections bite even above a cap, so only the cadres meant
        # to end short get them: a compliant cadre stays compliant.
        if profile == "short" and rng.random() < 0.12:
            self.add("penalty.recorded", "dadukou-oa", self.moment(year), {
                "severity": rng.choices(["minor", "major", "serious"], weights=[80, 17, 3])[0],
                "reason": "工作失误, 造成不良影响",
            }, learner_id, actor="admin:zzb-500104")
        if rng.random() < 0.01:
            self.add("credits.adjusted", "dadukou-oa", self.moment(year, 12, 12), {
                "category": rng.choice(["basic", "self_study"]),
                "amount": str(rng.choice([Decimal("2"), Decimal("4")] + (
                    [Decimal("-1.5")] if profile == "short" else []))),
                "reason": "年度审核更正",
            }, learner_id, actor="admin:zzb-500104")

    def achievement(self, learner_id: str, year: int, level: str) -> None:
        self.add("achievement.recorded", "dadukou-oa", self.moment(year), {
            "kind": self.rng.choice(["article", "research_report", "book"]),
            "level": level, "title": "关于基层治理现代化的调研与思考",
        }, learner_id)

    def award(self, learner_id: str, year: int, level: str, title: str) -> None:
        self.add("award.granted", "dadukou-oa", self.moment(year), {
            "award_id": f"AW-{year}-{self.counter}", "level": level, "title": title,
        }, learner_id, actor="admin:zzb-500104")

    def training(self, learner_id: str, year: int, hours: int | None = None) -> None:
        planned = hours is not None  # the programme's class: attended in full
        hours = hours or self.rng.choice([16, 24, 40, 56, 80, 120])
        leave = 0 if planned or self.rng.random() < 0.9 else self.rng.choice([2, 4, 8, 16, 24])
        self.add("training.attended", "party-school", self.moment(year), {
            "program_id": f"PS-{year}-{self.rng.randint(1, 40):03d}",
            "kind": self.rng.choice(
                ["qualification", "advancement", "advanced_seminar", "thematic", "induction"]),
            "hours": hours, "leave_hours": leave,
        }, learner_id)

    def course(self, learner_id: str, year: int, course_id: str | None = None,
               complete: bool = False) -> None:
        rng = self.rng
        course_id = course_id or f"C{rng.randint(1, 400):04d}"
        hours = "3" if complete else str(
            rng.choice([Decimal("0.5"), Decimal("1"), Decimal("2"), Decimal("3")]))
        when = self.moment(year, 1, 11)
        progress = Decimal(0)
        session = self.add  # sessions of one course, days apart, progress rising
        for _ in range(rng.randint(1, 4)):
            step = Decimal(rng.randint(20, 70)) / 100
            progress = Decimal(1) if complete else min(Decimal(1), progress + step)
            watched = session("study_session.recorded", "cela-online", when, {
                "course_id": course_id, "course_hours": hours, "required": rng.random() < 0.4,
                "minutes": rng.randint(10, 90), "progress": str(progress),
            }, learner_id)
            when += timedelta(days=rng.randint(1, 20))
            if progress >= 1:
                break
        if not complete and rng.random() < 0.004:  # proxy watching found later: voided
            self.void(learner_id, watched, when + timedelta(days=30), "代学代考: 冒名代学")

    def exam(self, learner_id: str, year: int) -> None:
        exam_id = f"EX-{year}-{self.rng.randint(1, 60):03d}"
        when = self.moment(year, 1, 11)
        for attempt in range(1, 4):
            score = self.rng.randint(40, 100)
            self.add("exam.graded", "cela-online", when, {
                "exam_id": exam_id, "score": score, "pass_score": 60, "attempt": attempt,
            }, learner_id)
            if score >= 60:
                break
            when += timedelta(days=7)

    def assignment(self, learner_id: str, year: int, kind: str | None = None,
                   accepted: bool | None = None) -> None:
        assignment_id = f"AS-{learner_id}-{year}-{self.counter}"
        when = self.moment(year, 1, 11)
        self.add("assignment.submitted", "cela-online", when, {
            "assignment_id": assignment_id,
            "kind": kind or self.rng.choice(
                ["reflection", "reflection", "research_report", "paper"]),
            "title": "学习党的二十大精神心得体会",
        }, learner_id)
        if accepted is None:
            accepted = self.rng.random() < 0.85
        self.add("assignment.reviewed", "cela-online", when + timedelta(days=5), {
            "assignment_id": assignment_id, "reviewer_id": f"R{self.rng.randint(1, 12):03d}",
            "decision": "accepted" if accepted else "rejected",
            "score": self.rng.randint(75, 98) if accepted else self.rng.randint(30, 59),
        }, learner_id, actor="reviewer:cela-online")

    def declaration(self, learner_id: str, year: int, hours: int | None = None,
                    activity: str | None = None) -> None:
        planned = hours is not None  # the programme's study group: approved in full
        declaration_id = f"DC-{learner_id}-{year}-{self.counter}"
        hours = hours or self.rng.choice([2, 4, 6, 8])
        when = self.moment(year, 1, 11)
        self.add("declaration.submitted", "dadukou-oa", when, {
            "declaration_id": declaration_id,
            "activity": activity or self.rng.choice(
                ["theory_group_study", "unit_political_study", "other"]),
            "hours": hours, "evidence": "会议记录及签到表",
        }, learner_id)
        approved = planned or self.rng.random() < 0.8
        self.add("declaration.reviewed", "dadukou-oa", when + timedelta(days=10), {
            "declaration_id": declaration_id, "reviewer_id": f"R{self.rng.randint(1, 12):03d}",
            "decision": "approved" if approved else "rejected",
            "approved_hours": (hours if planned else self.rng.randint(1, hours))
            if approved else 0,
        }, learner_id, actor="reviewer:dadukou-oa")

    def void(self, learner_id: str, target: dict[str, Any], when: datetime, reason: str) -> None:
        target_id = fact_event_id(target["source"], target["external_id"])
        self.add("record.voided", "dadukou-oa", when,
                 {"target_event_id": str(target_id), "reason": reason},
                 learner_id, actor="admin:zzb-500104")


def bad_lines(first_year: int) -> Iterator[str]:
    """One line for each kind of input the ingest must reject, with a clear reason; and two
    (an unregistered learner, a review never submitted) that wait, parked, for ever."""
    base = {"source": "demo-bad", "learner_id": "L000001", "actor": "platform:demo-bad",
            "occurred_at": f"{first_year + 1}-03-01T10:00:00+08:00"}
    session = {"course_id": "C0001", "course_hours": 1, "required": False, "minutes": 30,
               "progress": 0.5}

    def fact(external_id: str, fact_type: str, payload: dict[str, Any], **over: Any) -> str:
        return json.dumps({**base, "external_id": external_id, "type": fact_type,
                           "payload": payload, **over}, ensure_ascii=False)

    yield '{"type": "exam.graded", "source": "demo-bad", '  # malformed JSON
    yield fact("bad-2", "exam.graded",
               {"exam_id": "E1", "score": "high", "pass_score": 60, "attempt": 1})
    yield fact("bad-3", "exam.cheated", {"exam_id": "E1"})
    yield fact("bad-4", "exam.graded", {"exam_id": "E1", "score": 80, "pass_score": 60,
                                        "attempt": 1}, learner_id="L999999")
    yield fact("bad-5", "training.attended",
               {"program_id": "P1", "kind": "thematic", "hours": -8, "leave_hours": 0})
    yield fact("bad-6", "study_session.recorded", {**session, "progress": 1.5})
    yield fact("bad-7", "study_session.recorded", session, occurred_at="2099-01-01T00:00:00Z")
    yield fact("bad-8", "assignment.reviewed", {"assignment_id": "never-submitted",
               "reviewer_id": "R001", "decision": "accepted", "score": 90})
    yield fact("bad-9", "study_session.recorded", {**session, "speed": 16})


def write_demo(path: Path, *, seed: int = 20210104, learners: int = 500,
               first_year: int = 2021, years: int = 5) -> int:
    """Write the demo district as JSONL; returns the number of lines."""
    facts = DemoWriter(seed, learners, first_year, years).generate()
    lines = [json.dumps(f, ensure_ascii=False) for f in facts]
    bad = list(bad_lines(first_year))
    rng = random.Random(seed)
    for line in bad:  # spread the bad lines through the file, after the registrations
        lines.insert(rng.randint(len(lines) // 4, len(lines)), line)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(lines)
