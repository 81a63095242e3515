"""/xapi/activities/state, /xapi/activities/profile, /xapi/agents/profile (documents with
ETags), and /xapi/agents, /xapi/activities (what the statements say about them).

Documents belong to the org of the key that reads or writes them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from email.utils import format_datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool

from domain.xapi.documents import DocumentKey
from domain.xapi.formats import iri_error, parse_timestamp, uuid_error
from domain.xapi.validation import StatementInvalidError, actor, agent
from projections.xapi_statement_index import agent_key, stored_key

from ..auth import Principal
from .backend import LrsBackend
from .http import (
    XapiError,
    XapiRoute,
    backend_of,
    bad_request,
    check_version_header,
    json_response,
    xapi_principal,
)

router = APIRouter(prefix="/xapi", route_class=XapiRoute, include_in_schema=False)


@dataclass(frozen=True)
class Resource:
    kind: str
    id_param: str
    activity: bool  # keyed by activityId
    agent: bool  # keyed by agent
    registration: bool  # takes registration


STATE = Resource("state", "stateId", activity=True, agent=True, registration=True)
ACTIVITY_PROFILE = Resource("activity_profile", "profileId", activity=True, agent=False,
                            registration=False)
AGENT_PROFILE = Resource("agent_profile", "profileId", activity=False, agent=True,
                         registration=False)


def _params(request: Request, allowed: set[str]) -> dict[str, str]:
    params: dict[str, str] = {}
    for name, value in request.query_params.multi_items():
        if name not in allowed:
            raise bad_request(f"unknown parameter {name!r} (xAPI parameter names are case "
                              "sensitive)", name)
        params[name] = value
    return params


def _required(params: dict[str, str], name: str) -> str:
    if name not in params:
        raise bad_request(f"the {name} parameter is required", name)
    return params[name]


def _agent_key(text: str, check: Callable[[Any, str], None] = actor) -> tuple[str, dict[str, Any]]:
    try:
        value = json.loads(text)
        check(value, "agent")
    except StatementInvalidError as exc:
        raise bad_request(str(exc), exc.field) from exc
    except ValueError as exc:
        raise bad_request("agent must be the JSON of an Agent", "agent") from exc
    key = agent_key(value)
    if key is None:
        raise bad_request("agent must have an identifier (mbox, mbox_sha1sum, openid or "
                          "account)", "agent")
    return key, value


def _activity_id(params: dict[str, str]) -> str:
    activity_id = _required(params, "activityId")
    if iri_error(activity_id):
        raise bad_request("activityId must be an IRI", "activityId")
    return activity_id


def _key(resource: Resource, params: dict[str, str], principal: Principal) -> DocumentKey:
    registration = ""
    if resource.registration and "registration" in params:
        registration = params["registration"].lower()
        if uuid_error(registration):
            raise bad_request("registration must be a UUID", "registration")
    return DocumentKey(
        kind=resource.kind, org_id=principal.org_id,
        activity_id=_activity_id(params) if resource.activity else "",
        agent_key=_agent_key(_required(params, "agent"))[0] if resource.agent else "",
        registration=registration, doc_id=params.get(resource.id_param, ""))


def _allowed(resource: Resource, *, listing: bool) -> set[str]:
    names = {resource.id_param}
    names |= {"activityId"} if resource.activity else set()
    names |= {"agent"} if resource.agent else set()
    names |= {"registration"} if resource.registration else set()
    return names | ({"since"} if listing else set())


async def _document(request: Request, resource: Resource) -> Response:
    check_version_header(request)
    backend = backend_of(request)
    method = request.method
    writing = method in ("PUT", "POST", "DELETE")
    principal = await xapi_principal(request, write=writing)
    params = _params(request, _allowed(resource, listing=method in ("GET", "HEAD")))
    key = _key(resource, params, principal)
    if method in ("GET", "HEAD"):
        return await _read(backend, key, resource, params)
    if method == "DELETE":
        if not key.doc_id and not resource.registration:
            raise bad_request(f"the {resource.id_param} parameter is required",
                              resource.id_param)
        await run_in_threadpool(lambda: backend.delete_documents(
            key, every=not key.doc_id, if_match=request.headers.get("if-match")))
        return Response(status_code=204)
    if not key.doc_id:
        raise bad_request(f"the {resource.id_param} parameter is required", resource.id_param)
    body = await request.body()
    content_type = request.headers.get("content-type", "application/octet-stream")
    await run_in_threadpool(lambda: backend.write_document(
        key, content_type, body, merge=method == "POST",
        if_match=request.headers.get("if-match"),
        if_none_match=request.headers.get("if-none-match")))
    return Response(status_code=204)


async def _read(backend: LrsBackend, key: DocumentKey, resource: Resource,
                params: dict[str, str]) -> Response:
    if key.doc_id:
        if "since" in params:
            raise bad_request(f"since lists documents; it does not go with "
                              f"{resource.id_param}", "since")
        found = await run_in_threadpool(backend.document, key)
        if found is None:
            raise XapiError(404, f"no document {key.doc_id!r} here")
        instant = parse_timestamp(found.updated)
        headers = {"ETag": found.etag}
        if instant is not None:
            headers["Last-Modified"] = format_datetime(instant, usegmt=True)
        return Response(found.body, media_type=found.content_type, headers=headers)
    since = None
    if "since" in params:
        if parse_timestamp(params["since"]) is None:
            raise bad_request("since must be an ISO 8601 timestamp with a time zone", "since")
        since = stored_key(params["since"])
    ids = await run_in_threadpool(backend.document_ids, key, since)
    return json_response(ids)


def _endpoint(resource: Resource) -> Callable[[Request], Coroutine[Any, Any, Response]]:
    async def endpoint(request: Request) -> Response:
        return await _document(request, resource)

    return endpoint


for _path, _resource in (("/activities/state", STATE),
                         ("/activities/profile", ACTIVITY_PROFILE),
                         ("/agents/profile", AGENT_PROFILE)):
    router.add_api_route(_path, _endpoint(_resource),
                         methods=["GET", "HEAD", "PUT", "POST", "DELETE"],
                         name=f"xapi_{_resource.kind}")


@router.api_route("/agents", methods=["GET", "HEAD"])
async def person(request: Request) -> Response:
    """The Person this LRS knows by the agent's identifier (here: what the agent says)."""
    check_version_header(request)
    await xapi_principal(request, write=False)
    params = _params(request, {"agent"})
    _, value = _agent_key(_required(params, "agent"), agent)
    found: dict[str, Any] = {"objectType": "Person"}
    if "name" in value:
        found["name"] = [value["name"]]
    for key in ("mbox", "mbox_sha1sum", "openid", "account"):
        if key in value:
            found[key] = [value[key]]
    return json_response(found)


@router.api_route("/activities", methods=["GET", "HEAD"])
async def activity(request: Request) -> Response:
    """The activity with its canonical definition, merged from the statements that gave one;
    an activity no statement defined is still an Activity object."""
    check_version_header(request)
    backend = backend_of(request)
    principal = await xapi_principal(request, write=False)
    params = _params(request, {"activityId"})
    activity_id = _activity_id(params)
    orgs = [principal.org_id] if principal.role == "lrs" else backend.subtree(principal.org_id)
    definition = await run_in_threadpool(backend.activity_definition, orgs, activity_id)
    found: dict[str, Any] = {"objectType": "Activity", "id": activity_id}
    if definition:
        found["definition"] = definition
    return json_response(found)
