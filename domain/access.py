"""Who may do what: the roles of API keys, which facts each may post, and who may read.

This is where authorisation is decided. The HTTP API applies it (api.auth, api.security),
the write path checks a write's org subtree (domain.batch_writer), and the key store
keeps the keys (infra.store.keys).

| role     | may post                                         | may read (own subtree)        |
|----------|--------------------------------------------------|-------------------------------|
| platform | learner facts under its own source, except       | public boards only            |
|          | reviews, voids and adjustments                   |                               |
| reviewer | assignment and declaration reviews               | public boards only            |
| admin    | adjustments, voids, org facts, the board opt-in  | everything                    |
| auditor  | nothing                                          | everything, verify            |
| lrs      | xAPI statements (under /xapi, HTTP Basic)        | its org's xAPI statements     |
| (none)   | nothing                                          | public boards, masked         |

The subtree of a write is checked by the application against the state the fact applies
to (`record_facts(within_org=...)`); reads are checked against the read views.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from domain.facts import IncomingFact

Role = Literal["platform", "reviewer", "admin", "auditor", "lrs"]
ROLES: tuple[Role, ...] = ("platform", "reviewer", "admin", "auditor", "lrs")
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


def refusal_to_post(principal: Principal, incoming: IncomingFact) -> str | None:
    """Why this key may not post this fact, or None when its role allows it."""
    fact_type = incoming.type
    if principal.role == "platform":
        if fact_type in REVIEW_TYPES or fact_type in ADMIN_TYPES:
            return (f"a platform key may not post {fact_type}; reviews need a reviewer key, "
                    "voids, adjustments and org facts an admin key")
        if incoming.envelope.source != principal.source:
            return (f"this platform key posts only under source {principal.source!r}, "
                    f"not {incoming.envelope.source!r}")
        return None
    if principal.role == "reviewer":
        if fact_type not in REVIEW_TYPES:
            return f"a reviewer key posts only reviews, not {fact_type}"
        return None
    if principal.role == "admin":
        if fact_type not in ADMIN_TYPES:
            return (f"an admin key posts adjustments, voids and org facts, not {fact_type}; "
                    "learning facts come from platform keys")
        return None
    return f"an {principal.role} key may not post facts"
