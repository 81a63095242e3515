"""The bulk paths' GC thresholds are set on entry and restored by the last to leave."""

from __future__ import annotations

import gc

from domain.gc_pauses import BULK_THRESHOLDS, fewer_gc_pauses


def test_thresholds_are_raised_inside_and_restored_after_nesting() -> None:
    before = gc.get_threshold()
    with fewer_gc_pauses():
        assert gc.get_threshold() == BULK_THRESHOLDS
        with fewer_gc_pauses():
            assert gc.get_threshold() == BULK_THRESHOLDS
        assert gc.get_threshold() == BULK_THRESHOLDS
    assert gc.get_threshold() == before


def test_a_disabled_collector_is_left_disabled() -> None:
    before = gc.get_threshold()
    gc.set_threshold(0)
    try:
        with fewer_gc_pauses():
            assert gc.get_threshold()[0] == 0
        assert gc.get_threshold()[0] == 0
    finally:
        gc.set_threshold(*before)
