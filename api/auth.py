"""API keys as the HTTP API sees them: the key lookup it is given, and the refusal of a fact
a key's role may not post. The roles and what each may do are decided in domain.access."""

from __future__ import annotations

from typing import Protocol

from domain.access import (
    ADMIN_TYPES,
    READER_ROLES,
    REVIEW_TYPES,
    ROLES,
    Principal,
    Role,
    refusal_to_post,
)
from domain.facts import IncomingFact

from .errors import ApiError, forbidden

__all__ = ["ADMIN_TYPES", "READER_ROLES", "REVIEW_TYPES", "ROLES", "KeyLookup", "Principal",
           "Role", "may_post"]


class KeyLookup(Protocol):
    def principal_for(self, secret: str) -> Principal | None:
        """The key's holder, or None when the key is unknown or revoked."""

    def cached_principal(self, secret: str) -> tuple[bool, Principal | None]:
        """(True, what principal_for would answer) when that is known without asking the
        store; (False, None) otherwise."""


def may_post(principal: Principal, incoming: IncomingFact) -> ApiError | None:
    """Why this key may not post this fact (403), or None when its role allows it."""
    refusal = refusal_to_post(principal, incoming)
    return None if refusal is None else forbidden(refusal)
