"""xAPI documents on real SQLite and PostgreSQL: ETag preconditions, merge, listing, delete."""

from __future__ import annotations

import json

import pytest

from domain.xapi.documents import (
    DocumentConflictError,
    DocumentKey,
    DocumentMergeError,
    DocumentPreconditionError,
)
from infra.settings import Settings
from infra.xapi.document_tables import DocumentTables

STATE = DocumentKey("state", "A", "https://lms.example/course/7", "mbox:mailto:a@x.y", "",
                    "bookmark")


@pytest.fixture
def documents(store_settings: Settings):
    tables = DocumentTables(store_settings)
    yield tables
    tables.close()


def put(documents, body: dict, key: DocumentKey = STATE, **preconditions) -> None:
    documents.write(key, "application/json", json.dumps(body).encode(), merge=False,
                    if_match=preconditions.get("if_match"),
                    if_none_match=preconditions.get("if_none_match"))


def test_a_put_over_a_document_needs_its_etag_and_a_wrong_one_changes_nothing(documents):
    put(documents, {"page": 1})
    first = documents.document(STATE)
    assert first is not None and first.etag.startswith('"') and first.etag.endswith('"')
    with pytest.raises(DocumentConflictError):
        put(documents, {"page": 2})
    with pytest.raises(DocumentPreconditionError):
        put(documents, {"page": 2}, if_match='"1234"')
    with pytest.raises(DocumentPreconditionError):
        put(documents, {"page": 2}, if_none_match="*")
    assert documents.document(STATE) == first
    put(documents, {"page": 2}, if_match=first.etag)
    assert json.loads(documents.document(STATE).body) == {"page": 2}


def test_a_post_merges_json_objects_one_level_deep_and_refuses_anything_else(documents):
    put(documents, {"a": {"x": 1}, "b": 1})
    documents.write(STATE, "application/json", b'{"a": {"y": 2}, "c": 3}', merge=True,
                    if_match=None, if_none_match=None)
    assert json.loads(documents.document(STATE).body) == {"a": {"y": 2}, "b": 1, "c": 3}
    before = documents.document(STATE)
    with pytest.raises(DocumentMergeError):
        documents.write(STATE, "text/plain", b"plain", merge=True, if_match=None,
                        if_none_match=None)
    with pytest.raises(DocumentMergeError):
        documents.write(STATE, "application/json", b"[1, 2]", merge=True, if_match=None,
                        if_none_match=None)
    assert documents.document(STATE) == before


def test_ids_are_listed_since_a_time_and_a_delete_without_id_empties_the_state(documents):
    put(documents, {"n": 1})
    other = DocumentKey(**{**STATE.__dict__, "doc_id": "progress"})
    put(documents, {"n": 2}, key=other)
    assert documents.ids(STATE, None) == ["bookmark", "progress"]
    later = documents.document(other).updated
    assert documents.ids(STATE, later) == []
    documents.delete(STATE, every=False, if_match=None)
    assert documents.ids(STATE, None) == ["progress"]
    documents.delete(STATE, every=True, if_match=None)
    assert documents.ids(STATE, None) == []
