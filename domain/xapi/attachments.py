"""Statements sent as multipart/mixed with their attachments, and signed statements.

The first part is the statement JSON; each other part is the raw content of one attachment,
named by its SHA-2 in `X-Experience-API-Hash`. Every attachment without a fileUrl must
arrive as a part and every part must be an attachment a statement declares, with the hash
it claims. A signature attachment holds a JWS (compact serialization) whose payload is the
statement as it was before the signature was attached; its algorithm must be RS256, RS384
or RS512. Without an x5c certificate chain there is no key to check the signature bytes
against; the chain is not verified here (see the README).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from .comparison import LRS_SET, durations_to_hundredths
from .validation import SIGNATURE_USAGE, StatementInvalidError

SIGNATURE_ALGORITHMS = frozenset({"RS256", "RS384", "RS512"})
HASHES = {64: hashlib.sha256, 96: hashlib.sha384, 128: hashlib.sha512, 56: hashlib.sha224}


@dataclass(frozen=True)
class AttachmentPart:
    sha2: str
    content_type: str
    content: bytes


def _bad(field: str, message: str) -> StatementInvalidError:
    return StatementInvalidError(field, message)


def boundary_of(content_type: str) -> str:
    for param in content_type.split(";")[1:]:
        name, _, value = param.strip().partition("=")
        if name.strip().lower() == "boundary" and value.strip():
            return value.strip().strip('"')
    raise _bad("Content-Type", "multipart/mixed needs a boundary parameter")


def _headers(block: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in block.decode("utf-8", "replace").split("\r\n"):
        if line.strip():
            name, colon, value = line.partition(":")
            if not colon:
                raise _bad("body", f"a multipart part has a malformed header line {line!r}")
            headers[name.strip().lower()] = value.strip()
    return headers


def parse_multipart(content_type: str, body: bytes) -> tuple[bytes, list[AttachmentPart]]:
    """(the statement part's JSON bytes, the attachment parts) of a multipart/mixed body."""
    delimiter = b"--" + boundary_of(content_type).encode()
    segments = body.split(delimiter)
    if len(segments) < 3 or not segments[-1].startswith(b"--"):
        raise _bad("body", "not a complete multipart/mixed body for its boundary")
    parts: list[tuple[dict[str, str], bytes]] = []
    for segment in segments[1:-1]:
        segment = segment.removeprefix(b"\r\n")
        head, separator, content = segment.partition(b"\r\n\r\n")
        if not separator:
            head, content = b"", segment.removeprefix(b"\r\n")
        parts.append((_headers(head), content.removesuffix(b"\r\n")))
    first_headers, statement_json = parts[0]
    if first_headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise _bad("body", "the first part of a multipart statement request is the "
                   "application/json statement")
    attachments = []
    for index, (headers, content) in enumerate(parts[1:], start=1):
        sha2 = headers.get("x-experience-api-hash")
        if not sha2:
            raise _bad(f"part[{index}]", "an attachment part needs X-Experience-API-Hash")
        if headers.get("content-transfer-encoding", "").lower() != "binary":
            raise _bad(f"part[{index}]", "an attachment part is sent with "
                       "Content-Transfer-Encoding: binary")
        digest = HASHES.get(len(sha2))
        if digest is None or digest(content).hexdigest() != sha2.lower():
            raise _bad(f"part[{index}]", "the part's content does not have the SHA-2 its "
                       "X-Experience-API-Hash names")
        attachments.append(AttachmentPart(sha2.lower(), headers.get(
            "content-type", "application/octet-stream"), content))
    return statement_json, attachments


def _declared(statement: dict[str, Any]) -> list[dict[str, Any]]:
    found = list(statement.get("attachments") or [])
    target = statement.get("object")
    if isinstance(target, dict) and target.get("objectType") == "SubStatement":
        found += list(target.get("attachments") or [])
    return found


def check_attachments(statements: list[dict[str, Any]], parts: list[AttachmentPart]) -> None:
    """Every attachment without a fileUrl has its part; every part is declared; signatures
    hold (see the module docstring). Statements are valid already."""
    by_hash = {part.sha2: part for part in parts}
    declared: set[str] = set()
    for index, statement in enumerate(statements):
        for number, attachment in enumerate(_declared(statement)):
            sha2 = str(attachment["sha2"]).lower()
            declared.add(sha2)
            if "fileUrl" not in attachment and sha2 not in by_hash:
                raise _bad(f"[{index}].attachments[{number}]", "no fileUrl and no part with "
                           "its content (send it as multipart/mixed)")
            if attachment["usageType"] == SIGNATURE_USAGE:
                _check_signature(statement, attachment, by_hash.get(sha2),
                                 f"[{index}].attachments[{number}]")
    for part in parts:
        if part.sha2 not in declared:
            raise _bad("body", f"the part with hash {part.sha2} is no attachment of the "
                       "statements sent")


def _b64(segment: str, field: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError) as exc:
        raise _bad(field, "the signature is not a JWS compact serialization") from exc


def _check_signature(statement: dict[str, Any], attachment: dict[str, Any],
                     part: AttachmentPart | None, field: str) -> None:
    if attachment["contentType"] != "application/octet-stream":
        raise _bad(f"{field}.contentType", "a signature attachment is application/octet-stream")
    if part is None:
        raise _bad(field, "the signature's JWS must be sent as a part")
    segments = part.content.decode("ascii", "replace").strip().split(".")
    if len(segments) != 3 or not all(segments):
        raise _bad(field, "the signature is not a JWS compact serialization")
    try:
        header = json.loads(_b64(segments[0], field))
        payload = json.loads(_b64(segments[1], field))
    except ValueError as exc:
        raise _bad(field, "the JWS header and payload must be JSON") from exc
    if not isinstance(header, dict) or header.get("alg") not in SIGNATURE_ALGORITHMS:
        raise _bad(field, "a statement signature uses RS256, RS384 or RS512")
    if not isinstance(payload, dict) or _unsigned(payload) != _unsigned(statement):
        raise _bad(field, "the JWS payload is not this statement")


def _unsigned(statement: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in durations_to_hundredths(statement).items()
            if k not in (*LRS_SET, "attachments")}
