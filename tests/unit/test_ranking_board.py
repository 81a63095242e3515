"""Ranking rules: ties share a rank, names are masked, cursors round-trip."""

import pytest

from domain.errors import InvalidCursorError
from domain.org_tree import published_orgs
from projections.ranking_board import (
    ScoreHistogram,
    decode_cursor,
    encode_cursor,
    mask_name,
)


def test_equal_scores_share_a_rank_and_the_next_rank_skips():
    board = ScoreHistogram([(300, 1), (200, 2), (100, 1)], members=4)
    assert [board.rank_of(s) for s in (300, 200, 200, 100)] == [1, 2, 2, 4]


def test_members_without_credits_rank_after_every_positive_and_before_negative_scores():
    # scores: 500, 400, 400, then three members at 0, then -500 (a penalty)
    board = ScoreHistogram([(500, 1), (400, 2), (-500, 1)], members=7)
    assert [board.rank_of(s) for s in (500, 400, 0, -500)] == [1, 2, 4, 7]


@pytest.mark.parametrize(("name", "masked"), [
    ("张三明", "张*明"), ("欧阳明华", "欧**华"), ("李明", "李*"), ("王", "*")])
def test_names_are_masked(name, masked):
    assert mask_name(name) == masked


def test_cursor_round_trips():
    assert decode_cursor(encode_cursor(12345, "L000042")) == (12345, "L000042")


@pytest.mark.parametrize("cursor", ["not-a-cursor", encode_cursor(1, "x")[:-3], "WzEsMl0"])
def test_foreign_cursor_is_refused(cursor):
    with pytest.raises(InvalidCursorError, match="not a board cursor"):
        decode_cursor(cursor)


def test_the_nearest_explicit_choice_up_the_tree_publishes_a_board():
    # R (no choice) -> A (in) -> A1 (out) -> A11 (no choice); R -> B (no choice)
    orgs = [("R", None, None), ("A", "R", True), ("A1", "A", False), ("A11", "A1", None),
            ("B", "R", None)]
    assert published_orgs(orgs) == {"A"}
    assert published_orgs([*orgs[:2], ("A2", "A", None)]) == {"A", "A2"}
