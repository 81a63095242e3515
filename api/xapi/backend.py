"""What the xAPI routes need from storage, supplied by the composition root (infra)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from domain.xapi.attachments import AttachmentPart
from domain.xapi.documents import DocumentKey, StoredDocument


@dataclass(frozen=True)
class StatementQuery:
    """A validated GET /statements filter; `agent` is an agent key, times are stored keys."""

    orgs: Sequence[str]
    agent: str | None = None
    related_agents: bool = False
    verb: str | None = None
    activity: str | None = None
    related_activities: bool = False
    registration: str | None = None
    since: str | None = None
    until: str | None = None
    ascending: bool = False
    limit: int = 100
    after_seq: int | None = None
    through_seq: int | None = None


@dataclass(frozen=True)
class StatementPage:
    statements: list[str]  # each statement's JSON text, as stored
    last_seq: int | None  # position of the last one, when there are more
    through_seq: int  # the snapshot every page of this query reads


class StatementBackend(Protocol):
    def accept(self, statements: Sequence[dict[str, Any]], *, authority: dict[str, Any],
               org_id: str, attachments: Sequence[AttachmentPart] = ()) -> list[str]:
        """Store a batch atomically (visible to queries on return) and the contents of its
        attachments; the statement ids. StatementConflictError when an id is stored with
        other content."""

    def attachment_contents(self, hashes: Sequence[str]) -> list[AttachmentPart]:
        """The stored contents among these SHA-2 hashes."""

    def statement(self, statement_id: str, orgs: Sequence[str], *, voided: bool
                  ) -> tuple[str, str] | None:
        """(JSON text, stored) of one statement, or None."""

    def query(self, query: StatementQuery) -> StatementPage: ...

    def consistent_through(self) -> datetime:
        """Every statement stored at or before this instant is visible to queries."""

    def subtree(self, org_id: str) -> list[str]:
        """The org and every org under it (the statements a reader of that org may see)."""


class DocumentBackend(Protocol):
    """State, activity profile and agent profile documents (see domain.xapi.documents)."""

    def document(self, key: DocumentKey) -> StoredDocument | None: ...

    def document_ids(self, key: DocumentKey, since: str | None) -> list[str]:
        """Ids of the documents under `key` (its doc_id ignored) updated after `since`."""

    def write_document(self, key: DocumentKey, content_type: str, body: bytes, *, merge: bool,
                       if_match: str | None, if_none_match: str | None) -> None: ...

    def delete_documents(self, key: DocumentKey, *, every: bool, if_match: str | None
                         ) -> None: ...

    def activity_definition(self, orgs: Sequence[str], activity_id: str
                            ) -> dict[str, Any] | None: ...


class LrsBackend(StatementBackend, DocumentBackend, Protocol):
    """Everything /xapi needs."""
