"""The `format` of returned statements: exact (as stored), ids, canonical."""

from __future__ import annotations

import json
from typing import Any

LANGUAGE_MAP_KEYS = frozenset({"display", "name", "description"})


def _agent_ids(agent: dict[str, Any]) -> dict[str, Any]:
    kept = {k: v for k, v in agent.items()
            if k in ("objectType", "mbox", "mbox_sha1sum", "openid", "account")}
    if not any(k in kept for k in ("mbox", "mbox_sha1sum", "openid", "account")):
        kept["member"] = [_agent_ids(m) for m in agent.get("member", [])]
    return kept


def _object_ids(target: dict[str, Any]) -> dict[str, Any]:
    kind = target.get("objectType", "Activity")
    if kind in ("Agent", "Group"):
        return _agent_ids(target)
    if kind == "SubStatement":
        return _statement_ids(target)
    if kind == "StatementRef":
        return {k: v for k, v in target.items() if k in ("objectType", "id")}
    return {"id": target["id"]}


def _statement_ids(statement: dict[str, Any]) -> dict[str, Any]:
    out = dict(statement)
    out["actor"] = _agent_ids(statement["actor"])
    out["verb"] = {"id": statement["verb"]["id"]}
    out["object"] = _object_ids(statement["object"])
    if isinstance(statement.get("authority"), dict):
        out["authority"] = _agent_ids(statement["authority"])
    return out


def _pick(languages: dict[str, Any], wanted: list[str]) -> dict[str, Any]:
    for tag in wanted:
        for key, text in languages.items():
            if key.lower() == tag or key.lower().split("-")[0] == tag:
                return {key: text}
    first = next(iter(languages.items()), None)
    return dict([first]) if first else {}


def _canonical(value: Any, wanted: list[str]) -> Any:
    if isinstance(value, list):
        return [_canonical(v, wanted) for v in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, item in value.items():
        if key == "extensions":
            out[key] = item
        elif key in LANGUAGE_MAP_KEYS and isinstance(item, dict):
            out[key] = _pick(item, wanted)
        else:
            out[key] = _canonical(item, wanted)
    return out


def accepted_languages(header: str | None) -> list[str]:
    """Accept-Language tags in preference order, lower case."""
    ranked = []
    for index, part in enumerate((header or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag and tag != "*":
            ranked.append((-quality, index, tag.lower()))
    return [tag for _, _, tag in sorted(ranked)]


def render(body: str, page_format: str, languages: list[str]) -> Any:
    """A stored statement's JSON text as the requested format (parsed, for embedding)."""
    statement = json.loads(body)
    if page_format == "ids":
        return _statement_ids(statement)
    if page_format == "canonical":
        return _canonical(statement, languages)
    return statement
