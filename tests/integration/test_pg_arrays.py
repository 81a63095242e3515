"""Arrays sent to PostgreSQL as one text literal arrive element for element as written."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from infra.store.pg_arrays import int_array, text_array, uuid_array

pytestmark = pytest.mark.postgres

AWKWARD = ["plain", "", "NULL", "null", "with space", " lead", "comma,inside", "{brace}",
           'quote " inside', "back\\slash", "\\\"", "张三明", "tab\there", "line\nfeed",
           "event:0f8e2c1a-0000-4000-8000-000000000001", "assignment:L1:A,1"]


def test_text_uuid_and_int_arrays_round_trip(postgres_url: str) -> None:
    ids = [uuid.uuid4() for _ in range(50)]
    with psycopg.connect(postgres_url) as conn:
        texts, uuids, ints, empty = conn.execute(
            "SELECT %s::text[], %s::uuid[], %s::bigint[], %s::uuid[]",
            (text_array(AWKWARD), uuid_array(ids), int_array([1, 0, 2**40]),
             uuid_array([]))).fetchone()
    assert texts == AWKWARD
    assert uuids == ids
    assert ints == [1, 0, 2**40]
    assert empty == []
