"""Strict validation of xAPI 2.0 statements, naming the first wrong field.

A walker over the parsed JSON rather than pydantic models: the rules are mostly "which keys,
which exact JSON types, which one of several shapes" (an actor is an Agent or a Group told
apart by objectType, an object one of five), and pydantic's union errors name every branch
it tried, not the field that is wrong. The raw JSON is what is stored and returned, so there
is no model to build; the walker only accepts or refuses, with one error naming the path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .formats import (
    duration_error,
    iri_error,
    language_tag_error,
    mbox_error,
    sha1_error,
    sha2_error,
    timestamp_error,
    uuid_error,
    version_error,
)
from .json_shapes import StatementInvalidError, extensions, language_map
from .json_shapes import array as _array
from .json_shapes import boolean as _bool
from .json_shapes import check as _check
from .json_shapes import fail as _fail
from .json_shapes import json_object as _object
from .json_shapes import number as _number
from .json_shapes import required as _required
from .json_shapes import string as _string

__all__ = ["StatementInvalidError", "extensions", "language_map", "validate_statement"]

VOIDED = "http://adlnet.gov/expapi/verbs/voided"
SIGNATURE_USAGE = "http://adlnet.gov/expapi/attachments/signature"

INTERACTION_COMPONENTS: dict[str, frozenset[str]] = {
    "true-false": frozenset(),
    "choice": frozenset({"choices"}),
    "fill-in": frozenset(),
    "long-fill-in": frozenset(),
    "matching": frozenset({"source", "target"}),
    "performance": frozenset({"steps"}),
    "sequencing": frozenset({"choices"}),
    "likert": frozenset({"scale"}),
    "numeric": frozenset(),
    "other": frozenset(),
}
COMPONENT_LISTS = frozenset({"choices", "scale", "source", "target", "steps"})

STATEMENT_KEYS = frozenset({"id", "actor", "verb", "object", "result", "context", "timestamp",
                            "stored", "authority", "version", "attachments"})
SUBSTATEMENT_KEYS = frozenset({"objectType", "actor", "verb", "object", "result", "context",
                               "timestamp", "attachments"})
AGENT_KEYS = frozenset({"objectType", "name", "mbox", "mbox_sha1sum", "openid", "account"})
GROUP_KEYS = AGENT_KEYS | {"member"}
IFI_KEYS = ("mbox", "mbox_sha1sum", "openid", "account")
ACTIVITY_KEYS = frozenset({"objectType", "id", "definition"})
DEFINITION_KEYS = frozenset({"name", "description", "type", "moreInfo", "extensions",
                             "interactionType", "correctResponsesPattern"}) | COMPONENT_LISTS
RESULT_KEYS = frozenset({"score", "success", "completion", "response", "duration",
                         "extensions"})
SCORE_KEYS = frozenset({"scaled", "raw", "min", "max"})
CONTEXT_KEYS = frozenset({"registration", "instructor", "team", "contextActivities",
                          "contextAgents", "contextGroups", "revision", "platform", "language",
                          "statement", "extensions"})
CONTEXT_ACTIVITY_KEYS = frozenset({"parent", "grouping", "category", "other"})
ATTACHMENT_KEYS = frozenset({"usageType", "display", "description", "contentType", "length",
                             "sha2", "fileUrl"})


def _account(value: Any, path: str) -> None:
    account = _object(value, path, frozenset({"homePage", "name"}))
    _check(f"{path}.homePage", iri_error(_required(account, "homePage", path)))
    _string(_required(account, "name", path), f"{path}.name")


def _ifis(obj: dict[str, Any], path: str) -> int:
    """How many inverse functional identifiers the agent or group carries (each checked)."""
    found = [key for key in IFI_KEYS if key in obj]
    for key in found:
        value, where = obj[key], f"{path}.{key}"
        if key == "mbox":
            _check(where, mbox_error(value))
        elif key == "mbox_sha1sum":
            _check(where, sha1_error(value))
        elif key == "openid":
            _check(where, iri_error(value))
        else:
            _account(value, where)
    return len(found)


def agent(value: Any, path: str, *, object_type_required: bool = False) -> None:
    obj = _object(value, path, AGENT_KEYS)
    if "objectType" in obj:
        if obj["objectType"] != "Agent":
            raise _fail(f"{path}.objectType", "must be \"Agent\"")
    elif object_type_required:
        raise _fail(f"{path}.objectType", "is required (\"Agent\") for an agent used here")
    if "name" in obj:
        _string(obj["name"], f"{path}.name")
    if _ifis(obj, path) != 1:
        raise _fail(path, "an Agent needs exactly one of mbox, mbox_sha1sum, openid, account")


def group(value: Any, path: str) -> None:
    obj = _object(value, path, GROUP_KEYS)
    if obj.get("objectType") != "Group":
        raise _fail(f"{path}.objectType", "must be \"Group\"")
    if "name" in obj:
        _string(obj["name"], f"{path}.name")
    identified = _ifis(obj, path)
    if identified > 1:
        raise _fail(path, "a Group has at most one of mbox, mbox_sha1sum, openid, account")
    if "member" in obj or not identified:
        members = _array(_required(obj, "member", path), f"{path}.member",
                         non_empty=not identified)
        for index, member in enumerate(members):
            agent(member, f"{path}.member[{index}]")


def actor(value: Any, path: str) -> None:
    """An Agent, or a Group when objectType says so."""
    if isinstance(value, dict) and value.get("objectType") == "Group":
        group(value, path)
    else:
        agent(value, path)


def verb(value: Any, path: str) -> str:
    obj = _object(value, path, frozenset({"id", "display"}))
    verb_id = _required(obj, "id", path)
    _check(f"{path}.id", iri_error(verb_id))
    if "display" in obj:
        language_map(obj["display"], f"{path}.display")
    return str(verb_id)


def _components(value: Any, path: str) -> None:
    seen: set[str] = set()
    for index, component in enumerate(_array(value, path)):
        where = f"{path}[{index}]"
        obj = _object(component, where, frozenset({"id", "description"}))
        component_id = _required(obj, "id", where)
        _string(component_id, f"{where}.id")
        if component_id in seen:
            raise _fail(f"{where}.id", "interaction component ids must be unique in the list")
        seen.add(component_id)
        if "description" in obj:
            language_map(obj["description"], f"{where}.description")


def definition(value: Any, path: str) -> None:
    obj = _object(value, path, DEFINITION_KEYS)
    for key in ("name", "description"):
        if key in obj:
            language_map(obj[key], f"{path}.{key}")
    for key in ("type", "moreInfo"):
        if key in obj:
            _check(f"{path}.{key}", iri_error(obj[key]))
    if "extensions" in obj:
        extensions(obj["extensions"], f"{path}.extensions")
    interaction = obj.get("interactionType")
    if "interactionType" in obj and (not isinstance(interaction, str)
                                     or interaction not in INTERACTION_COMPONENTS):
        raise _fail(f"{path}.interactionType",
                    f"must be one of {', '.join(INTERACTION_COMPONENTS)}")
    if "correctResponsesPattern" in obj:
        if interaction is None:
            raise _fail(f"{path}.correctResponsesPattern", "needs an interactionType")
        for index, item in enumerate(_array(obj["correctResponsesPattern"],
                                            f"{path}.correctResponsesPattern")):
            _string(item, f"{path}.correctResponsesPattern[{index}]")
    for key in COMPONENT_LISTS & obj.keys():
        if interaction is None or key not in INTERACTION_COMPONENTS[interaction]:
            raise _fail(f"{path}.{key}", f"is not allowed for interactionType {interaction}")
        _components(obj[key], f"{path}.{key}")


def activity(value: Any, path: str) -> None:
    obj = _object(value, path, ACTIVITY_KEYS)
    if "objectType" in obj and obj["objectType"] != "Activity":
        raise _fail(f"{path}.objectType", "must be \"Activity\"")
    _check(f"{path}.id", iri_error(_required(obj, "id", path)))
    if "definition" in obj:
        definition(obj["definition"], f"{path}.definition")


def statement_ref(value: Any, path: str) -> None:
    obj = _object(value, path, frozenset({"objectType", "id"}))
    if obj.get("objectType") != "StatementRef":
        raise _fail(f"{path}.objectType", "must be \"StatementRef\"")
    _check(f"{path}.id", uuid_error(_required(obj, "id", path)))


def statement_object(value: Any, path: str, *, in_substatement: bool = False) -> None:
    if not isinstance(value, dict):
        raise _fail(path, "must be a JSON object")
    kind = value.get("objectType", "Activity")
    if kind == "Activity":
        activity(value, path)
    elif kind == "Agent":
        agent(value, path, object_type_required=True)
    elif kind == "Group":
        group(value, path)
    elif kind == "StatementRef":
        statement_ref(value, path)
    elif kind == "SubStatement":
        if in_substatement:
            raise _fail(f"{path}.objectType", "a SubStatement may not hold a SubStatement")
        _statement_body(value, path, SUBSTATEMENT_KEYS, substatement=True)
    else:
        raise _fail(f"{path}.objectType",
                    "must be Activity, Agent, Group, StatementRef or SubStatement")


def result(value: Any, path: str) -> None:
    obj = _object(value, path, RESULT_KEYS)
    if "score" in obj:
        _score(obj["score"], f"{path}.score")
    for key in ("success", "completion"):
        if key in obj:
            _bool(obj[key], f"{path}.{key}")
    if "response" in obj:
        _string(obj["response"], f"{path}.response")
    if "duration" in obj:
        _check(f"{path}.duration", duration_error(obj["duration"]))
    if "extensions" in obj:
        extensions(obj["extensions"], f"{path}.extensions")


def _score(value: Any, path: str) -> None:
    obj = _object(value, path, SCORE_KEYS)
    numbers = {key: _number(obj[key], f"{path}.{key}") for key in SCORE_KEYS & obj.keys()}
    scaled = numbers.get("scaled")
    if scaled is not None and not -1 <= scaled <= 1:
        raise _fail(f"{path}.scaled", "must be between -1 and 1")
    low, high, raw = numbers.get("min"), numbers.get("max"), numbers.get("raw")
    if low is not None and high is not None and low >= high:
        raise _fail(f"{path}.min", "must be less than max")
    if raw is not None and low is not None and raw < low:
        raise _fail(f"{path}.raw", "must not be below min")
    if raw is not None and high is not None and raw > high:
        raise _fail(f"{path}.raw", "must not be above max")


def _context_activities(value: Any, path: str) -> None:
    obj = _object(value, path, CONTEXT_ACTIVITY_KEYS)
    for key, item in obj.items():
        items = item if isinstance(item, list) else [item]
        for index, one in enumerate(items):
            activity(one, f"{path}.{key}[{index}]" if isinstance(item, list)
                     else f"{path}.{key}")


def _relevant_types(obj: dict[str, Any], path: str) -> None:
    if "relevantTypes" in obj:
        for index, item in enumerate(_array(obj["relevantTypes"], f"{path}.relevantTypes",
                                            non_empty=True)):
            _check(f"{path}.relevantTypes[{index}]", iri_error(item))


def _context_members(value: Any, path: str, kind: str,
                     check: Callable[[Any, str], None]) -> None:
    """contextAgents (kind "agent") or contextGroups (kind "group"): each an object of
    objectType "context" + Kind, the member, and optional relevantTypes."""
    object_type = f"context{kind.capitalize()}"
    for index, item in enumerate(_array(value, path)):
        where = f"{path}[{index}]"
        obj = _object(item, where, frozenset({"objectType", kind, "relevantTypes"}))
        if obj.get("objectType") != object_type:
            raise _fail(f"{where}.objectType", f"must be \"{object_type}\"")
        check(_required(obj, kind, where), f"{where}.{kind}")
        _relevant_types(obj, where)


def _context_agents(value: Any, path: str) -> None:
    _context_members(value, path, "agent", agent)


def _context_groups(value: Any, path: str) -> None:
    _context_members(value, path, "group", group)


def context(value: Any, path: str, object_is_activity: bool) -> None:
    obj = _object(value, path, CONTEXT_KEYS)
    checks: dict[str, Callable[[Any, str], None]] = {
        "registration": lambda v, p: _check(p, uuid_error(v)),
        "instructor": actor,
        "team": group,
        "contextActivities": _context_activities,
        "contextAgents": _context_agents,
        "contextGroups": _context_groups,
        "revision": _string,
        "platform": _string,
        "language": lambda v, p: _check(p, language_tag_error(v)),
        "statement": statement_ref,
        "extensions": extensions,
    }
    for key, check in checks.items():
        if key in obj:
            check(obj[key], f"{path}.{key}")
    for key in ("revision", "platform"):
        if key in obj and not object_is_activity:
            raise _fail(f"{path}.{key}", "may be used only when the object is an Activity")


def attachment(value: Any, path: str) -> None:
    obj = _object(value, path, ATTACHMENT_KEYS)
    _check(f"{path}.usageType", iri_error(_required(obj, "usageType", path)))
    language_map(_required(obj, "display", path), f"{path}.display")
    if "description" in obj:
        language_map(obj["description"], f"{path}.description")
    _string(_required(obj, "contentType", path), f"{path}.contentType")
    length = _required(obj, "length", path)
    if isinstance(length, bool) or not isinstance(length, int) or length < 0:
        raise _fail(f"{path}.length", "must be a non-negative integer")
    _check(f"{path}.sha2", sha2_error(_required(obj, "sha2", path)))
    if "fileUrl" in obj:
        _check(f"{path}.fileUrl", iri_error(obj["fileUrl"]))


def authority(value: Any, path: str) -> None:
    """An Agent, or an OAuth pair: a Group of exactly two Agents."""
    if isinstance(value, dict) and value.get("objectType") == "Group":
        group(value, path)
        if any(key in value for key in IFI_KEYS):
            raise _fail(path, "an authority Group is anonymous (the OAuth client and user)")
        if len(value.get("member", [])) != 2:
            raise _fail(f"{path}.member", "an authority Group has exactly two members")
    else:
        agent(value, path)


def _statement_body(obj: Any, path: str, keys: frozenset[str], *, substatement: bool) -> None:
    statement = _object(obj, path, keys)
    prefix = f"{path}." if path else ""
    actor(_required(statement, "actor", path or "statement"), f"{prefix}actor")
    verb(_required(statement, "verb", path or "statement"), f"{prefix}verb")
    target = _required(statement, "object", path or "statement")
    statement_object(target, f"{prefix}object", in_substatement=substatement)
    if "result" in statement:
        result(statement["result"], f"{prefix}result")
    if "context" in statement:
        is_activity = isinstance(target, dict) and target.get("objectType",
                                                              "Activity") == "Activity"
        context(statement["context"], f"{prefix}context", is_activity)
    if "timestamp" in statement:
        _check(f"{prefix}timestamp", timestamp_error(statement["timestamp"]))
    if "attachments" in statement:
        for index, item in enumerate(_array(statement["attachments"], f"{prefix}attachments")):
            attachment(item, f"{prefix}attachments[{index}]")


def validate_statement(value: Any) -> dict[str, Any]:
    """The statement itself when every rule holds; StatementInvalidError naming the first
    field that breaks one."""
    if not isinstance(value, dict):
        raise _fail("statement", "must be a JSON object")
    _statement_body(value, "", STATEMENT_KEYS, substatement=False)
    if "id" in value:
        _check("id", uuid_error(value["id"]))
    if "stored" in value:
        _check("stored", timestamp_error(value["stored"]))
    if "version" in value:
        _check("version", version_error(value["version"]))
    if "authority" in value:
        authority(value["authority"], "authority")
    if value["verb"]["id"] == VOIDED:
        target = value["object"]
        if not isinstance(target, dict) or target.get("objectType") != "StatementRef":
            raise _fail("object", "a voiding statement's object must be a StatementRef")
    return value
