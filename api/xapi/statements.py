"""/xapi/statements: PUT one, POST a batch, GET one or a filtered page, HEAD; and /about."""

from __future__ import annotations

import json
import uuid
from email.utils import format_datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool

from domain.xapi.attachments import AttachmentPart, check_attachments, parse_multipart
from domain.xapi.formats import format_stored, parse_timestamp
from domain.xapi.validation import StatementInvalidError, validate_statement

from ..auth import Principal
from ..services import Services
from .backend import StatementBackend
from .http import (
    SUPPORTED_VERSIONS,
    XapiError,
    XapiRoute,
    authority_of,
    backend_of,
    bad_request,
    check_version_header,
    json_response,
    xapi_principal,
)
from .statement_format import accepted_languages, render
from .statement_query import QUERY_PARAMS, Listing, listing, open_more, seal_more, single_params

router = APIRouter(prefix="/xapi", route_class=XapiRoute, include_in_schema=False)


@router.api_route("/about", methods=["GET", "HEAD"])
async def about() -> Response:
    """The versions this LRS speaks (no credentials, no version header needed)."""
    return json_response({"version": list(SUPPORTED_VERSIONS), "extensions": {}})


def _params(request: Request, allowed: frozenset[str]) -> dict[str, str]:
    params: dict[str, str] = {}
    for name, value in request.query_params.multi_items():
        if name not in allowed:
            raise bad_request(f"unknown parameter {name!r} (xAPI parameter names are case "
                              "sensitive)", name)
        if name in params:
            raise bad_request(f"parameter {name!r} given twice", name)
        params[name] = value
    return params


async def _json_body(request: Request) -> tuple[Any, list[AttachmentPart]]:
    """The statement JSON, and the attachment parts when it came as multipart/mixed."""
    content_type = request.headers.get("content-type", "")
    kind = content_type.split(";")[0].strip().lower()
    raw = await request.body()
    parts: list[AttachmentPart] = []
    if kind == "multipart/mixed":
        raw, parts = parse_multipart(content_type, raw)
    elif kind != "application/json":
        raise bad_request("statements are sent as application/json (or multipart/mixed "
                          "with their attachments)", "Content-Type")
    try:
        return json.loads(raw.decode("utf-8")), parts
    except (UnicodeDecodeError, ValueError) as exc:
        raise bad_request(f"the body is not JSON: {exc}", "body") from exc


def _orgs(backend: StatementBackend, principal: Principal) -> list[str]:
    if principal.role == "lrs":
        return [principal.org_id]
    return backend.subtree(principal.org_id)


async def _store(request: Request, statements: list[Any],
                 parts: list[AttachmentPart]) -> list[str]:
    principal = await xapi_principal(request, write=True)
    for index, statement in enumerate(statements):
        try:
            validate_statement(statement)
        except StatementInvalidError as exc:
            if len(statements) > 1:  # name the statement of the batch, too
                raise bad_request(f"statement [{index}]: {exc}", f"[{index}].{exc.field}"
                                  ) from exc
            raise
    check_attachments(statements, parts)
    services: Services = request.app.state.services
    backend = backend_of(request)
    ids: list[str] = await run_in_threadpool(
        lambda: backend.accept(statements, authority=authority_of(
            principal, services.public_base_url), org_id=principal.org_id,
            attachments=parts))
    return ids


@router.put("/statements")
async def put_statement(request: Request) -> Response:
    check_version_header(request)
    params = _params(request, frozenset({"statementId"}))
    if "statementId" not in params:
        raise bad_request("PUT /statements needs the statementId parameter", "statementId")
    statement, parts = await _json_body(request)
    if not isinstance(statement, dict):
        raise bad_request("PUT /statements takes one statement (a JSON object)", "body")
    statement_id = params["statementId"]
    validate_statement({**statement, "id": statement_id})
    if "id" in statement and str(statement["id"]).lower() != statement_id.lower():
        raise bad_request("the statement's id differs from the statementId parameter", "id")
    await _store(request, [{**statement, "id": statement_id} if "id" not in statement
                           else statement], parts)
    return Response(status_code=204)


@router.post("/statements")
async def post_statements(request: Request) -> Response:
    check_version_header(request)
    _params(request, frozenset())
    body, parts = await _json_body(request)
    statements = body if isinstance(body, list) else [body]
    if not statements:
        raise bad_request("the batch holds no statement", "body")
    return json_response(await _store(request, statements, parts))


@router.api_route("/statements", methods=["GET", "HEAD"])
async def get_statements(request: Request) -> Response:
    backend = backend_of(request)
    try:
        check_version_header(request)
        principal = await xapi_principal(request, write=False)
        params = _params(request, QUERY_PARAMS)
        response = await _read(request, backend, principal, params)
    except XapiError as error:
        error.headers = error.headers | await _consistency(backend)
        raise
    response.headers.update(await _consistency(backend))
    return response


async def _consistency(backend: StatementBackend) -> dict[str, str]:
    through = await run_in_threadpool(backend.consistent_through)
    return {"X-Experience-API-Consistent-Through": format_stored(through)}


async def _read(request: Request, backend: StatementBackend, principal: Principal,
                params: dict[str, str]) -> Response:
    orgs = _orgs(backend, principal)
    languages = accepted_languages(request.headers.get("accept-language"))
    single = single_params(params)
    if single is not None:
        statement_id, page_format, voided = single
        found = await run_in_threadpool(
            lambda: backend.statement(statement_id, orgs, voided=voided))
        if found is None:
            raise XapiError(404, f"no statement {statement_id} here"
                            + (" that is voided" if voided else ""))
        body, stored = found
        instant = parse_timestamp(stored)
        headers = {"Last-Modified": format_datetime(instant, usegmt=True)} if instant else {}
        rendered = render(body, page_format, languages)
        if params.get("attachments") == "true":
            return await _with_attachments(backend, rendered, [rendered], headers)
        return json_response(rendered, headers=headers)
    if "more" in params:
        if len(params) > 1:
            raise bad_request("more is given alone (it carries the whole query)", "more")
        page_of = open_more(params["more"], orgs)
    else:
        page_of = listing(params, orgs)
    return await _page(request, backend, page_of, languages)


async def _page(request: Request, backend: StatementBackend, page_of: Listing,
                languages: list[str]) -> Response:
    page = await run_in_threadpool(backend.query, page_of.query)
    more = ""
    if page.last_seq is not None:
        more = f"{request.url.path}?more={seal_more(page_of, page.last_seq, page.through_seq)}"
    statements = [render(body, page_of.format, languages) for body in page.statements]
    result = {"statements": statements, "more": more}
    if page_of.attachments:
        return await _with_attachments(backend, result, statements, {})
    return json_response(result)


async def _with_attachments(backend: StatementBackend, result: Any,
                            statements: list[dict[str, Any]], headers: dict[str, str]
                            ) -> Response:
    """attachments=true: multipart/mixed, the JSON first, then each attachment's content."""
    hashes = sorted({str(a.get("sha2", "")).lower() for s in statements
                     for a in s.get("attachments") or []})
    parts = await run_in_threadpool(backend.attachment_contents, hashes)
    boundary = uuid.uuid4().hex
    chunks = [f"--{boundary}\r\nContent-Type: application/json\r\n\r\n".encode(),
              json.dumps(result, ensure_ascii=False).encode(), b"\r\n"]
    for part in parts:
        chunks += [f"--{boundary}\r\nContent-Type: {part.content_type}\r\n"
                   f"Content-Transfer-Encoding: binary\r\n"
                   f"X-Experience-API-Hash: {part.sha2}\r\n\r\n".encode(),
                   part.content, b"\r\n"]
    chunks.append(f"--{boundary}--\r\n".encode())
    return Response(b"".join(chunks), headers=headers,
                    media_type=f"multipart/mixed; boundary={boundary}")
