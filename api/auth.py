"""API keys, roles and org scopes: who may post which facts and read what.

| role     | may post                                         | may read (own subtree)        |
|----------|--------------------------------------------------|-------------------------------|
| platform | learner facts under its own source, except       | public boards only            |
|          | reviews, voids and adjustments                   |                               |
| reviewer | assignment and declaration reviews               | public boards only            |
| admin    | adjustments, voids, org facts, the board opt-in  | everything                    |
| auditor  | nothing                                          | everything, verify            |
| (none)   | nothing                                          | public boards, masked         |

The subtree of a write is checked by the application against the state the fact applies
to (`record_facts(within_org=...)`); reads are checked against the read views.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from domain.facts import IncomingFact

from .errors import ApiError, forbidden

Role = Literal["platform", "reviewer", "admin", "auditor"]
ROLES: tuple[Role, ...] = ("platform", "reviewer", "admin", "auditor")
READER_ROLES = frozenset({"admin", "auditor"})

REVIEW_TYPES = frozenset({"assignment.reviewed", "declaration.reviewed"})
ADMIN_TYPES = frozenset({"credits.adjusted", "record.voided", "org.registered",
                         "org.board_published"})


@dataclass(frozen=True)
class Principal:
    """The holder of a valid API key."""

    key_id: str
    role: Role
    org_id: str
    source: str | None = None

    def describe(self) -> str:
        return f"{self.role} key {self.key_id} (org {self.org_id})"


class KeyLookup(Protocol):
    def principal_for(self, secret: str) -> Principal | None:
        """The key's holder, or None when the key is unknown or revoked."""

    def cached_principal(self, secret: str) -> tuple[bool, Principal | None]:
        """(True, what principal_for would answer) when that is known without asking the
        store; (False, None) otherwise."""


def may_post(principal: Principal, incoming: IncomingFact) -> ApiError | None:
    """Why this key may not post this fact, or None when its role allows it."""
    fact_type = incoming.type
    if principal.role == "platform":
        if fact_type in REVIEW_TYPES or fact_type in ADMIN_TYPES:
            return forbidden(f"a platform key may not post {fact_type}; reviews need a "
                             "reviewer key, voids, adjustments and org facts an admin key")
        if incoming.envelope.source != principal.source:
            return forbidden(f"this platform key posts only under source {principal.source!r}, "
                             f"not {incoming.envelope.source!r}")
        return None
    if principal.role == "reviewer":
        if fact_type not in REVIEW_TYPES:
            return forbidden(f"a reviewer key posts only reviews, not {fact_type}")
        return None
    if principal.role == "admin":
        if fact_type not in ADMIN_TYPES:
            return forbidden(f"an admin key posts adjustments, voids and org facts, not "
                             f"{fact_type}; learning facts come from platform keys")
        return None
    return forbidden(f"an {principal.role} key may not post facts")
