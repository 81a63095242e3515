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


def competition_ranks(scores: Sequence[int], first_rank: int, rows_before: int) -> list[int]:
    """Ranks for a page of descending scores: equal scores share a rank (1, 2, 2, 4).

    `first_rank` is the rank of the page's first score; `rows_before` counts the board's
    entries before the page (so a new score's rank is its position on the whole board).
    """
    ranks: list[int] = []
    for index, score in enumerate(scores):
        if index == 0:
            ranks.append(first_rank)
        elif score == scores[index - 1]:
            ranks.append(ranks[-1])
        else:
            ranks.append(rows_before + index + 1)
    return ranks


def encode_cursor(score_cents: int, learner_id: str) -> str:
    raw = json.dumps([score_cents, learner_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
    """Raises InvalidCursorError on a cursor this module did not make."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        score, learner_id = json.loads(base64.urlsafe_b64decode(padded))
        if not isinstance(score, int) or not isinstance(learner_id, str):
            raise TypeError
        return score, learner_id
    except (ValueError, TypeError) as exc:
        raise InvalidCursorError(f"cursor {cursor!r} is not a board cursor") from exc


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
    page: Sequence[ScoredLearner], first_rank: int, rows_before: int, *, anonymous: bool
) -> list[BoardEntry]:
    ranks = competition_ranks([s.score_cents for s in page], first_rank, rows_before)
    return [
        BoardEntry(
            rank=rank,
            learner_id=None if anonymous else s.learner_id,
            name=mask_name(s.name),
            org_id=s.org_id,
            score=Decimal(s.score_cents) / 100,
        )
        for rank, s in zip(ranks, page, strict=True)
    ]
