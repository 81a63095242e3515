"""Ranking board rules: competition ranks, masked names, page cursors, the answer's shape."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, SerializerFunctionWrapHandler, model_serializer

from domain.credits.balance import Amount, PolicyRef
from domain.errors import InvalidCursorError


def mask_name(name: str) -> str:
    """张三明 -> 张*明, 欧阳明华 -> 欧**华, 李明 -> 李*: public boards never show a full name."""
    if len(name) <= 1:
        return "*"
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


class ScoreHistogram:
    """How many learners of a board hold each score: ranks without reading the learners.

    The tie rule: equal scores share a rank, and the next rank skips (1, 2, 2, 4), so
    a score's rank is 1 + the number of learners with a higher score. `counts` covers the
    non-zero scores; every other member of the board scores 0.
    """

    def __init__(self, counts: Sequence[tuple[int, int]], members: int) -> None:
        self.counts = sorted(counts, reverse=True)
        self.members = members
        self.zeros = members - sum(n for _, n in self.counts)

    def above(self, score_cents: int) -> int:
        higher = sum(n for score, n in self.counts if score > score_cents)
        return higher + (self.zeros if score_cents < 0 else 0)

    def rank_of(self, score_cents: int) -> int:
        return 1 + self.above(score_cents)


def encode_cursor(score_cents: int, learner_id: str) -> str:
    raw = json.dumps([score_cents, learner_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# Scores are stored as 64-bit integers: a cursor outside that range names no entry, and the
# database driver could not even bind it.
MAX_SCORE_CENTS = 2**63 - 1


def decode_cursor(cursor: str) -> tuple[int, str]:
    """Raises InvalidCursorError on a cursor this module did not make."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        score, learner_id = json.loads(base64.urlsafe_b64decode(padded))
        # bool is an int to Python but not to the database
        if type(score) is not int or not -MAX_SCORE_CENTS <= score <= MAX_SCORE_CENTS:
            raise TypeError
        if not isinstance(learner_id, str) or "\x00" in learner_id:
            raise TypeError
        return score, learner_id
    except (ValueError, TypeError, RecursionError) as exc:
        raise InvalidCursorError(f"cursor {cursor[:80]!r} is not a board cursor") from exc


@dataclass(frozen=True)
class ScoredLearner:
    learner_id: str
    name: str
    org_id: str
    score_cents: int


class BoardEntry(BaseModel):
    rank: int
    learner_id: str | None = None  # None on public (anonymous) boards: then left out
    name: str
    org_id: str
    score: Amount

    @model_serializer(mode="wrap")
    def _without_hidden_learner(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        if isinstance(data, dict) and data.get("learner_id") is None:
            data.pop("learner_id", None)
        return data


class BoardAnswer(BaseModel):
    policy: PolicyRef
    period: str
    org: str | None
    entries: list[BoardEntry]
    next_cursor: str | None


def board_entries(
    page: Sequence[ScoredLearner], histogram: ScoreHistogram, *, anonymous: bool
) -> list[BoardEntry]:
    return [
        BoardEntry(
            rank=histogram.rank_of(s.score_cents),
            learner_id=None if anonymous else s.learner_id,
            name=mask_name(s.name),
            org_id=s.org_id,
            score=Decimal(s.score_cents) / 100,
        )
        for s in page
    ]
