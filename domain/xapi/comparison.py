"""Is a resent statement the same as the stored one? (xAPI statement comparison)

The same id with the same content is answered as already stored; with other content it is a
conflict (409), never an overwrite. The fields the LRS sets or may rewrite (stored,
authority, version, and the timestamp it filled in) do not count, and timestamps compare as
instants, not as strings.
"""

from __future__ import annotations

import re
from typing import Any

from .formats import parse_timestamp

LRS_SET = ("id", "stored", "authority", "version")


def _context_arrays(part: dict[str, Any]) -> dict[str, Any]:
    context = part.get("context")
    if not isinstance(context, dict) or not isinstance(context.get("contextActivities"), dict):
        return part
    activities = {key: value if isinstance(value, list) else [value]
                  for key, value in context["contextActivities"].items()}
    return part | {"context": context | {"contextActivities": activities}}


def normal_form(statement: dict[str, Any]) -> dict[str, Any]:
    """The statement as it is kept and returned: a single context activity (of the statement
    or its SubStatement) becomes an array of one, as xAPI returns them."""
    statement = _context_arrays(statement)
    target = statement.get("object")
    if isinstance(target, dict) and target.get("objectType") == "SubStatement":
        statement = statement | {"object": _context_arrays(target)}
    return statement


_SECONDS = re.compile(r"(\d+)\.(\d+)S$")


def _hundredths(duration: Any) -> Any:
    """A duration compared to 0.01 s: digits of seconds beyond the hundredths are cut."""
    if not isinstance(duration, str):
        return duration
    return _SECONDS.sub(lambda m: f"{m.group(1)}.{(m.group(2) + '00')[:2]}S", duration)


def durations_to_hundredths(statement: dict[str, Any]) -> dict[str, Any]:
    """The statement with result durations (its own and its SubStatement's) cut to 0.01 s,
    as xAPI compares them."""
    def cut(part: dict[str, Any]) -> dict[str, Any]:
        result = part.get("result")
        if isinstance(result, dict) and "duration" in result:
            return part | {"result": result | {"duration": _hundredths(result["duration"])}}
        return part

    statement = cut(statement)
    target = statement.get("object")
    if isinstance(target, dict) and target.get("objectType") == "SubStatement":
        statement = statement | {"object": cut(target)}
    return statement


def _comparable(statement: dict[str, Any], *, keep_timestamp: bool) -> dict[str, Any]:
    statement = durations_to_hundredths(normal_form(statement))
    comparable = {k: v for k, v in statement.items() if k not in LRS_SET}
    if not keep_timestamp:
        comparable.pop("timestamp", None)
    elif "timestamp" in comparable:
        comparable["timestamp"] = parse_timestamp(comparable["timestamp"])
    target = comparable.get("object")
    if isinstance(target, dict) and target.get("objectType") == "SubStatement" and (
            "timestamp" in target):
        comparable["object"] = target | {"timestamp": parse_timestamp(target["timestamp"])}
    return comparable


def same_statement(sent: dict[str, Any], stored: dict[str, Any]) -> bool:
    """Whether `sent` (as the client sent it) is the statement already `stored`."""
    keep = "timestamp" in sent
    return _comparable(sent, keep_timestamp=keep) == _comparable(stored, keep_timestamp=keep)
