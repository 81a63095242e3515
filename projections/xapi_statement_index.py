"""What the xAPI query tables hold for one statement: a pure function of the statement.

`agent`, `activity` and their `related_*` forms filter on these rows, so they are computed
the same way when a statement is first stored and when `replay` rebuilds the tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

from domain.xapi.formats import parse_timestamp
from domain.xapi.validation import VOIDED


def agent_key(agent: dict[str, Any]) -> str | None:
    """The agent's or identified group's inverse functional identifier as one string; None
    for an anonymous group."""
    if "mbox" in agent:
        return f"mbox:{agent['mbox']}"
    if "mbox_sha1sum" in agent:
        return f"mbox_sha1sum:{str(agent['mbox_sha1sum']).lower()}"
    if "openid" in agent:
        return f"openid:{agent['openid']}"
    account = agent.get("account")
    if isinstance(account, dict):
        return f"account:{account.get('homePage')}|{account.get('name')}"
    return None


def stored_key(stored: str) -> str:
    """`stored` as a string that sorts in time order, to microseconds, for since/until."""
    instant = parse_timestamp(stored)
    assert instant is not None, f"stored is always a timestamp: {stored!r}"
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class StatementIndex:
    statement_id: str
    verb_id: str
    registration: str | None
    stored_key: str
    voids: str | None  # the statement id a voiding statement targets
    ref_id: str | None = None  # the statement id a StatementRef object refers to
    agents: set[tuple[str, bool]] = field(default_factory=set)  # (agent key, related only)
    activities: set[tuple[str, bool]] = field(default_factory=set)


def _add_agent(index: StatementIndex, agent: Any, related: bool) -> None:
    if isinstance(agent, dict):
        key = agent_key(agent)
        if key is not None:
            index.agents.add((key, related))
        for member in agent.get("member", []) if related else []:
            _add_agent(index, member, True)


def _add_parts(index: StatementIndex, statement: dict[str, Any], related: bool) -> None:
    """Actor, object and context of a statement or (all related) of its SubStatement."""
    _add_agent(index, statement.get("actor"), related)
    target = statement.get("object") or {}
    kind = target.get("objectType", "Activity")
    if kind == "Activity":
        index.activities.add((str(target["id"]), related))
    elif kind in ("Agent", "Group"):
        _add_agent(index, target, related)
    elif kind == "SubStatement":
        _add_parts(index, target, True)
    context = statement.get("context") or {}
    for key in ("instructor", "team"):
        _add_agent(index, context.get(key), True)
    for item in context.get("contextAgents", []):
        _add_agent(index, item.get("agent"), True)
    for item in context.get("contextGroups", []):
        _add_agent(index, item.get("group"), True)
    for activities in (context.get("contextActivities") or {}).values():
        for activity in activities if isinstance(activities, list) else [activities]:
            index.activities.add((str(activity["id"]), True))


def index_statement(statement: dict[str, Any]) -> StatementIndex:
    """The query-table rows of a stored (complete, valid) statement."""
    target = statement["object"]
    voids = None
    if statement["verb"]["id"] == VOIDED and target.get("objectType") == "StatementRef":
        voids = str(target["id"]).lower()
    index = StatementIndex(
        statement_id=str(statement["id"]).lower(), verb_id=str(statement["verb"]["id"]),
        registration=(statement.get("context") or {}).get("registration"),
        stored_key=stored_key(str(statement["stored"])), voids=voids,
        ref_id=str(target["id"]).lower() if target.get("objectType") == "StatementRef"
        else None)
    if isinstance(index.registration, str):
        index.registration = index.registration.lower()
    _add_parts(index, statement, False)
    _add_agent(index, statement.get("authority"), True)
    return index


LANGUAGE_MAPS = ("name", "description")


def activity_definitions(statement: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(activity id, definition) of every activity of the statement that carries one."""
    found: list[tuple[str, dict[str, Any]]] = []

    def add(activity: Any) -> None:
        if isinstance(activity, dict) and activity.get("objectType", "Activity") == "Activity" \
                and isinstance(activity.get("definition"), dict):
            found.append((str(activity["id"]), activity["definition"]))

    def parts(part: dict[str, Any]) -> None:
        target = part.get("object") or {}
        add(target)
        if target.get("objectType") == "SubStatement":
            parts(target)
        for activities in ((part.get("context") or {}).get("contextActivities") or {}).values():
            for activity in activities if isinstance(activities, list) else [activities]:
                add(activity)

    parts(statement)
    return found


def merge_definition(known: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """The canonical definition after one more statement: language maps gain its languages,
    every other property takes its latest value."""
    merged = dict(known or {})
    for key, value in new.items():
        if key in LANGUAGE_MAPS and isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merged[key] | value
        else:
            merged[key] = value
    return merged
