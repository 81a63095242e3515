"""xAPI documents (state, activity profile, agent profile): the write rules, no storage.

Documents are player bookkeeping that PUT replaces, POST merges and DELETE removes, so they
are kept as rows, not facts. Writes are guarded by ETags (optimistic concurrency): If-Match
must name the current version, If-None-Match: * requires that there is none, and a PUT over
an existing document without either header is refused, as it would silently overwrite.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

JSON_TYPE = "application/json"


class DocumentPreconditionError(ValueError):
    """If-Match / If-None-Match does not hold (412)."""


class DocumentConflictError(ValueError):
    """A PUT over an existing document without a precondition header (409)."""


class DocumentMergeError(ValueError):
    """A POST that cannot be merged: either document is not a JSON object (400)."""


@dataclass(frozen=True)
class StoredDocument:
    content_type: str
    body: bytes
    etag: str  # quoted, as sent in the ETag header
    updated: str  # UTC timestamp to microseconds


@dataclass(frozen=True)
class DocumentKey:
    """Which document: `kind` is state, activity_profile or agent_profile."""

    kind: str
    org_id: str
    activity_id: str = ""
    agent_key: str = ""
    registration: str = ""
    doc_id: str = ""

    def values(self) -> tuple[str, ...]:
        return (self.kind, self.org_id, self.activity_id, self.agent_key, self.registration,
                self.doc_id)


def etag_of(body: bytes) -> str:
    return f'"{hashlib.sha1(body).hexdigest()}"'


def is_json(content_type: str) -> bool:
    return content_type.split(";")[0].strip().lower() == JSON_TYPE


def _tags(header: str) -> list[str]:
    return [tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()]


def check_preconditions(existing: StoredDocument | None, *, if_match: str | None,
                        if_none_match: str | None, put: bool) -> None:
    if if_match is not None:
        tags = _tags(if_match)
        if existing is None or ("*" not in tags and existing.etag not in tags):
            raise DocumentPreconditionError(
                "If-Match does not name the document's current ETag (it changed, or is gone)")
    if if_none_match is not None and existing is not None:
        tags = _tags(if_none_match)
        if "*" in tags or existing.etag in tags:
            raise DocumentPreconditionError("If-None-Match: the document exists already")
    if put and existing is not None and if_match is None and if_none_match is None:
        raise DocumentConflictError(
            "the document exists: send If-Match with its ETag to replace it (or "
            "If-None-Match: * to create one only when there is none)")


def _json_object(body: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise DocumentMergeError(f"{what} is not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise DocumentMergeError(f"{what} is not a JSON object, so it cannot be merged")
    return value


def merged_body(existing: StoredDocument | None, content_type: str, body: bytes
                ) -> tuple[str, bytes]:
    """(content type, body) after a POST: stored as sent when there is no document yet, else
    both must be JSON objects and the new one's top-level properties replace the old ones'."""
    if is_json(content_type):
        sent = _json_object(body, "the document sent")
    elif existing is not None:
        raise DocumentMergeError("a POST merges JSON documents: send application/json")
    else:
        return content_type, body
    if existing is None:
        return content_type, body
    if not is_json(existing.content_type):
        raise DocumentMergeError("the stored document is not JSON, so nothing can be merged "
                                 "into it (PUT replaces it)")
    merged = _json_object(existing.body, "the stored document") | sent
    return JSON_TYPE, json.dumps(merged, ensure_ascii=False).encode("utf-8")
