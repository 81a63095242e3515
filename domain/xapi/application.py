"""Accepting xAPI statements: the LRS-set fields, the resend rule, one atomic save.

A batch is all or nothing: every statement is valid and none conflicts with a stored one,
or nothing is stored. Statements live in their own application (its own event table and
notification log in the same database as the learner facts): the LRS takes statements about
any actor, registered learner or not, so they are not learner-archive facts.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError

from .comparison import normal_form, same_statement
from .formats import format_stored
from .statement_fact import XapiStatement, statement_stream_id
from .validation import StatementInvalidError

SAVE_ATTEMPTS = 3
DEFAULT_VERSION = "2.0.0"


class StatementConflictError(ValueError):
    """A statement id already stored with other content (xAPI: 409 Conflict)."""


def prepare(sent: dict[str, Any], *, stored: datetime, authority: dict[str, Any]
            ) -> dict[str, Any]:
    """The statement as the LRS keeps it: the client's fields in the client's order, then
    the ones the LRS sets. `authority` always comes from the credential (a client's claim of
    authority cannot be checked), `timestamp` defaults to `stored`."""
    statement = dict(normal_form(sent))
    statement.setdefault("id", str(uuid.uuid4()))
    stamp = format_stored(stored)
    statement["stored"] = stamp
    statement.setdefault("timestamp", stamp)
    statement["authority"] = authority
    statement.setdefault("version", DEFAULT_VERSION)
    return statement


class XapiStatements(Application[UUID]):
    name = "xapi"

    def __init__(self, env: dict[str, str] | None = None) -> None:
        super().__init__(env)
        self._write_lock = threading.Lock()

    def stored(self, statement_id: str) -> XapiStatement | None:
        try:
            found: XapiStatement = self.repository.get(statement_stream_id(statement_id))
        except AggregateNotFoundError:
            return None
        return found

    def accept(self, sent: Sequence[dict[str, Any]], *, stored: datetime,
               authority: dict[str, Any], org_id: str,
               maybe_stored: Callable[[list[str]], set[str]] | None = None
               ) -> tuple[list[str], int | None]:
        """Store a batch; (every statement's id in order, the last notification id written
        or None when every statement was a resend).

        `maybe_stored(ids)`: which of these (lower-case) ids may be stored already, from one
        query of an index, so that only those are read back from the store to compare. An
        index that is behind is harmless: a statement it missed meets its stored twin in the
        save (IntegrityError), and the batch is then checked id by id."""
        ids = [str(s["id"]).lower() for s in sent if "id" in s]
        if len(set(ids)) != len(ids):
            raise StatementInvalidError("id", "a batch may not hold the same id twice")
        prepared = [prepare(s, stored=stored, authority=authority) for s in sent]
        for attempt in range(SAVE_ATTEMPTS):
            candidates = None
            if attempt == 0 and maybe_stored is not None:
                candidates = maybe_stored(ids) if ids else set()
            with self._write_lock:
                new = self._new_facts(sent, prepared, org_id, candidates)
                try:
                    recordings = self.save(*new) if new else []
                except IntegrityError:
                    # Another writer stored one of these ids meanwhile: look again, so that
                    # the answer is "already stored" or a conflict, decided on its content.
                    if attempt == SAVE_ATTEMPTS - 1:
                        raise
                    continue
            last = max((r.notification.id for r in recordings), default=None)
            return [str(p["id"]) for p in prepared], last
        raise AssertionError("unreachable")

    def _new_facts(self, sent: Sequence[dict[str, Any]], prepared: list[dict[str, Any]],
                   org_id: str, candidates: set[str] | None) -> list[XapiStatement]:
        new = []
        for original, statement in zip(sent, prepared, strict=True):
            statement_id = str(statement["id"])
            look = "id" in original and (candidates is None
                                         or statement_id.lower() in candidates)
            existing = self.stored(statement_id) if look else None
            if existing is None:
                new.append(XapiStatement.store(statement, org_id))
            elif not same_statement(original, existing.parsed()):
                raise StatementConflictError(
                    f"statement {statement['id']} is already stored with other content; "
                    "a statement never changes (void it and send a new one)")
        return new
