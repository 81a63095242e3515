"""GET /statements parameters: parsed strictly (400 naming the parameter), and the `more`
cursor that carries a query to its next page."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from domain.xapi.formats import iri_error, parse_timestamp, uuid_error
from domain.xapi.validation import StatementInvalidError, actor
from projections.xapi_statement_index import agent_key, stored_key

from .backend import StatementQuery
from .http import bad_request

QUERY_PARAMS = frozenset({"statementId", "voidedStatementId", "agent", "verb", "activity",
                          "registration", "related_activities", "related_agents", "since",
                          "until", "limit", "format", "attachments", "ascending", "more"})
SINGLE_PARAMS = frozenset({"statementId", "voidedStatementId", "format", "attachments"})
FORMATS = ("exact", "ids", "canonical")
MAX_LIMIT = 500


@dataclass(frozen=True)
class Listing:
    """A statement list request: the filter, how to render, and where the page starts."""

    query: StatementQuery
    format: str = "exact"
    attachments: bool = False


def _boolean(params: dict[str, str], name: str) -> bool:
    value = params.get(name, "false")
    if value not in ("true", "false"):
        raise bad_request(f"{name} must be true or false", name)
    return value == "true"


def _instant_key(params: dict[str, str], name: str) -> str | None:
    if name not in params:
        return None
    instant = parse_timestamp(params[name])
    if instant is None:
        raise bad_request(f"{name} must be an ISO 8601 timestamp with a time zone", name)
    return stored_key(params[name])


def _agent_param(text: str) -> str:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise bad_request("agent must be the JSON of an Agent or identified Group",
                          "agent") from exc
    try:
        actor(value, "agent")
    except StatementInvalidError as exc:
        raise bad_request(str(exc), exc.field) from exc
    key = agent_key(value)
    if key is None:
        raise bad_request("agent must have an identifier (an anonymous Group has none)",
                          "agent")
    return key


def single_params(params: dict[str, str]) -> tuple[str, str, bool] | None:
    """(statement id, format, voided?) for a GET of one statement, else None."""
    chosen = [name for name in ("statementId", "voidedStatementId") if name in params]
    if not chosen:
        return None
    if len(chosen) > 1:
        raise bad_request("statementId and voidedStatementId may not both be given",
                          chosen[1])
    extra = sorted(set(params) - SINGLE_PARAMS)
    if extra:
        raise bad_request(f"{chosen[0]} may be combined only with format and attachments, "
                          f"not {extra[0]}", extra[0])
    name = chosen[0]
    reason = uuid_error(params[name])
    if reason:
        raise bad_request(f"{name} {reason}", name)
    return params[name], _format(params), name == "voidedStatementId"


def _format(params: dict[str, str]) -> str:
    value = params.get("format", "exact")
    if value not in FORMATS:
        raise bad_request(f"format must be one of {', '.join(FORMATS)}", "format")
    _boolean(params, "attachments")
    return value


def listing(params: dict[str, str], orgs: Sequence[str]) -> Listing:
    for name in ("verb", "activity"):
        if name in params and iri_error(params[name]):
            raise bad_request(f"{name} must be an IRI", name)
    if "registration" in params and uuid_error(params["registration"]):
        raise bad_request("registration must be a UUID", "registration")
    limit_text = params.get("limit", "0")
    if not limit_text.isdigit():
        raise bad_request("limit must be a non-negative integer", "limit")
    limit = int(limit_text)
    query = StatementQuery(
        orgs=list(orgs),
        agent=_agent_param(params["agent"]) if "agent" in params else None,
        related_agents=_boolean(params, "related_agents"),
        verb=params.get("verb"), activity=params.get("activity"),
        related_activities=_boolean(params, "related_activities"),
        registration=params["registration"].lower() if "registration" in params else None,
        since=_instant_key(params, "since"), until=_instant_key(params, "until"),
        ascending=_boolean(params, "ascending"),
        limit=MAX_LIMIT if limit == 0 else min(limit, MAX_LIMIT))
    return Listing(query, _format(params), _boolean(params, "attachments"))


def seal_more(page_of: Listing, last_seq: int, through_seq: int) -> str:
    fields = asdict(page_of.query)
    fields.pop("orgs")
    fields |= {"after_seq": last_seq, "through_seq": through_seq, "format": page_of.format,
               "attachments": page_of.attachments}
    text = json.dumps(fields, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(text).decode().rstrip("=")


def open_more(token: str, orgs: Sequence[str]) -> Listing:
    """The listing a `more` token continues; the org scope is always the caller's own."""
    try:
        fields: dict[str, Any] = json.loads(base64.urlsafe_b64decode(
            token + "=" * (-len(token) % 4)))
        page_format, attachments = fields.pop("format"), fields.pop("attachments")
        query = replace(StatementQuery(orgs=list(orgs)), **fields)
    except (ValueError, TypeError, KeyError, binascii.Error) as exc:
        raise bad_request("more is not a cursor this LRS gave out", "more") from exc
    return Listing(query, str(page_format), bool(attachments))
