"""The org tree, walked one way everywhere: scope checks on write, the boards an org's
members sit on, which boards are public, and (in SQL) the read side's subtree queries.

Parent links never change once an org is registered, but they come from input, so every
walk stops after MAX_DEPTH steps or at an org it has seen: a cycle cannot hang a walk.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping

# Deeper than any real org tree (state, province, city, district, township: 5).
MAX_DEPTH = 64

ParentOf = Callable[[str], "str | None"]


def walk_up(org_id: str, parent_of: ParentOf) -> Iterator[str]:
    """`org_id`, its parent, and so on up to the root. `parent_of` is asked lazily, only for
    the orgs the caller goes on past, so it may load or refuse an unknown org."""
    seen: set[str] = set()
    current: str | None = org_id
    while current is not None and current not in seen and len(seen) < MAX_DEPTH:
        yield current
        seen.add(current)
        current = parent_of(current)


def chain_of(org_id: str, parents: Mapping[str, str | None]) -> list[str]:
    """The org and its ancestors, itself first."""
    return list(walk_up(org_id, parents.get))


def is_within(org_id: str, ancestor: str, parents: Mapping[str, str | None]) -> bool:
    """Is `org_id` the `ancestor` org or below it?"""
    return any(org == ancestor for org in walk_up(org_id, parents.get))


def published_orgs(orgs: Iterable[tuple[str, str | None, bool | None]]) -> set[str]:
    """Orgs whose board is public, from (org_id, parent_id, board_published) rows: the
    nearest explicit opt-in or opt-out up the tree decides; the default is off."""
    rows = list(orgs)
    parents = {org_id: parent for org_id, parent, _ in rows}
    choices = {org_id: published for org_id, _, published in rows}
    public = set()
    for org_id in parents:
        decided = next((choices[org] for org in walk_up(org_id, parents.get)
                        if choices.get(org) is not None), None)
        if decided:
            public.add(org_id)
    return public
