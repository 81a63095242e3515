"""STUDYLEDGER_FAULT_KILL_AT: which point, at which hit (the kill itself is exercised by the
crash tests in tests/integration/kafka and tests/integration)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from consumers.fault_points import no_faults
from infra.ops.fault_injection import KillAt, fault_point_from, parse_kill_at
from infra.settings import Settings


def test_a_kill_at_names_a_known_point_and_a_hit_from_one():
    assert parse_kill_at("consume.after_store_commit:3") == ("consume.after_store_commit", 3)
    for bad in ("consume.after_store_commit", "consume.after_store_commit:0",
                "consume.after_lunch:1", "relay.after_broker_ack:x"):
        with pytest.raises(ValueError, match="POINT:N"):
            parse_kill_at(bad)


def test_settings_refuse_an_unknown_point_so_a_typo_never_disables_a_crash_test():
    with pytest.raises(ValidationError, match="POINT:N"):
        Settings(fault_kill_at="consume.after_store:1")
    assert Settings(fault_kill_at="ingest.after_batch_commit:2").fault_kill_at is not None


def test_the_process_is_killed_at_the_nth_hit_of_its_point_only():
    kills: list[int] = []
    point = KillAt("relay.after_broker_ack", 2, kill=lambda: kills.append(point.hits))
    for name in ("relay.after_position_stored", "relay.after_broker_ack",
                 "relay.after_position_stored", "relay.after_broker_ack",
                 "relay.after_broker_ack"):
        point(name)
    assert kills == [2]


def test_without_the_setting_every_point_passes():
    assert fault_point_from(None) is no_faults and fault_point_from("") is no_faults
