"""Deterministic identities, so any platform or auditor can compute them offline."""

from functools import lru_cache
from uuid import UUID, uuid5

NS = UUID("6f1c2a8e-5b0d-4c47-9a51-2f8e3c9d7b10")


def fact_event_id(source: str, external_id: str) -> UUID:
    """The id of the fact a platform identifies as (source, external_id)."""
    return uuid5(NS, f"{source}:{external_id}")


# Archive and org ids are asked for on every fact of a batch; uuid5 costs ~10 us.
@lru_cache(maxsize=65536)
def learner_archive_id(learner_id: str) -> UUID:
    return uuid5(NS, f"learner:{learner_id}")


@lru_cache(maxsize=4096)
def org_unit_id(org_id: str) -> UUID:
    return uuid5(NS, f"org:{org_id}")
