"""An accepted xAPI statement as an immutable fact: one aggregate per statement.

The aggregate id is `uuid5(NS, "xapi:" + statement id)`, never the client's statement id
itself: event ids of this store are public and computable, so a client choosing a statement
id must not be able to collide with another fact. The event holds the statement as the LRS
returns it (the client's JSON plus the fields the LRS sets: id, stored, timestamp,
authority, version), so a rebuilt query table answers byte for byte what was answered
before. A voiding statement is a fact like any other; nothing is ever changed.
"""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from domain.identity import NS


def statement_stream_id(statement_id: str) -> UUID:
    """The aggregate id of the statement with this id (any case of the UUID)."""
    return uuid5(NS, f"xapi:{statement_id.lower()}")


class XapiStatement(Aggregate):
    """One accepted statement. `org_id` is the org of the key that sent it (read scope)."""

    class Stored(Aggregate.Created):
        statement_id: str
        statement: str
        stored: str
        org_id: str

    def __init__(self, statement_id: str, statement: str, stored: str, org_id: str) -> None:
        self.statement_id = statement_id
        self.statement = statement
        self.stored = stored
        self.org_id = org_id

    @classmethod
    def store(cls, statement: dict[str, Any], org_id: str) -> XapiStatement:
        """The fact of accepting `statement` (complete: id and stored set by the LRS)."""
        statement_id = str(statement["id"])
        aggregate: XapiStatement = cls._create(
            cls.Stored,
            id=statement_stream_id(statement_id),
            statement_id=statement_id,
            statement=json.dumps(statement, ensure_ascii=False, separators=(",", ":")),
            stored=str(statement["stored"]),
            org_id=org_id,
        )
        return aggregate

    def parsed(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.statement)
        return value
