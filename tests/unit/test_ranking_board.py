"""Ranking rules: ties share a rank, names are masked, cursors round-trip."""

import pytest

from domain.errors import InvalidCursorError
from projections.ranking_board import (
    competition_ranks,
    decode_cursor,
    encode_cursor,
    mask_name,
)


def test_equal_scores_share_a_rank_and_the_next_rank_skips():
    assert competition_ranks([300, 200, 200, 100], first_rank=1, rows_before=0) == [1, 2, 2, 4]


def test_a_later_page_continues_the_ranks_of_the_whole_board():
    # board: 500, 400, 400 | page: 400, 300  (the page starts inside a tie)
    assert competition_ranks([400, 300], first_rank=2, rows_before=3) == [2, 5]


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
