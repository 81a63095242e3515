"""The per-stream hash chain: hash = sha256(prev_hash + canonical_json(fact)).

Auditors recompute it from the stored rows alone; the rules are written here once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from domain.facts import canonical_json
from domain.identity import fact_event_id

GENESIS_HASH = "0" * 64


def link_hash(prev_hash: str, fact: dict[str, Any]) -> str:
    return link_hash_of_text(prev_hash, canonical_json(fact))


def link_hash_of_text(prev_hash: str, canonical_text: str) -> str:
    """link_hash for a fact whose canonical JSON is already at hand."""
    return hashlib.sha256((prev_hash + canonical_text).encode()).hexdigest()


@dataclass(frozen=True)
class ChainLink:
    """One stored link as read back: where it sits and what it claims."""

    version: int
    event_id: UUID
    fact: dict[str, Any]
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class BrokenLink:
    version: int
    event_id: UUID | None
    reason: str


class ChainVerifier:
    """Checks one stream's links in version order; stops at the first broken one."""

    def __init__(self) -> None:
        self.expected_version = 1
        self.last_hash = GENESIS_HASH
        self.broken: BrokenLink | None = None
        self.links_checked = 0

    def check(self, link: ChainLink) -> BrokenLink | None:
        if self.broken is not None:
            return self.broken
        self.broken = self._first_fault(link)
        if self.broken is None:
            self.expected_version += 1
            self.last_hash = link.hash
            self.links_checked += 1
        return self.broken

    def _first_fault(self, link: ChainLink) -> BrokenLink | None:
        if link.version != self.expected_version:
            return BrokenLink(
                self.expected_version, None,
                f"version {self.expected_version} is missing (next stored is {link.version})",
            )
        if link.prev_hash != self.last_hash:
            return BrokenLink(
                link.version, link.event_id,
                "prev_hash does not match the hash of the link before it",
            )
        if link_hash(link.prev_hash, link.fact) != link.hash:
            return BrokenLink(
                link.version, link.event_id,
                "hash does not match the stored fact (the fact or its hash was altered)",
            )
        expected_id = fact_event_id(str(link.fact.get("source")), str(link.fact.get("external_id")))
        if expected_id != link.event_id:
            return BrokenLink(
                link.version, link.event_id,
                "event id does not match the fact's (source, external_id)",
            )
        return None
