"""Sealed page cursors: opaque to the reader, and refused when altered or made elsewhere.

A board cursor holds the last entry's score and learner id (the keyset of the next page), and
anonymous readers must never see learner ids; a history cursor holds a version. So a cursor is
encrypted and authenticated, with the standard library only, as a synthetic-IV scheme:

    tag    = HMAC-SHA256(mac_key, scope || plain)[:16]
    cipher = plain XOR HMAC-SHA256(enc_key, tag || counter) ...
    cursor = base64url(tag || cipher)

The tag authenticates the content and the scope (which board, which learner), so a cursor
altered by one bit, made with another secret, or taken from another board or learner is
refused. It is deterministic: the same position on the same board always gives the same
cursor, which tells a reader nothing they did not already have (it is the page they read).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Sequence
from typing import Annotated

from fastapi import Query

from domain.errors import InvalidCursorError

TAG_BYTES = 16
# Far above any cursor this module makes (a learner id is at most 128 characters); longer
# input is refused before any work is done on it.
MAX_CURSOR_CHARS = 512
MIN_SECRET_BYTES = 16

# No max_length here: an overlong cursor is refused as invalid_cursor, like any other that
# was not handed out.
CursorParam = Annotated[str | None, Query(
    examples=["AZpSzwXjcZoeLbG1Y9MGaQF4ld0zRQtDFfdU21NQsHiRmObU"],
    description="`next_cursor` of the previous page, as it was given (opaque; a cursor of "
                "another listing, or an altered one, is refused with 422 invalid_cursor)")]


def _hmac(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


class CursorSeal:
    def __init__(self, secret: bytes) -> None:
        if len(secret) < MIN_SECRET_BYTES:
            raise ValueError(f"the cursor secret needs {MIN_SECRET_BYTES} bytes or more")
        # Separate keys for the tag and the key stream, derived from the one secret.
        self._mac_key = _hmac(secret, b"studyledger cursor tag")
        self._enc_key = _hmac(secret, b"studyledger cursor stream")

    def _tag(self, scope: Sequence[str], plain: bytes) -> bytes:
        label = json.dumps(list(scope), ensure_ascii=False, separators=(",", ":")).encode()
        # The scope's length first, so no scope and content can be re-split into another pair.
        message = len(label).to_bytes(4, "big") + label + plain
        return _hmac(self._mac_key, message)[:TAG_BYTES]

    def _stream(self, tag: bytes, size: int) -> bytes:
        blocks = (_hmac(self._enc_key, tag + n.to_bytes(4, "big"))
                  for n in range((size + 31) // 32))
        return b"".join(blocks)[:size]

    def seal(self, scope: Sequence[str], plain: str) -> str:
        data = plain.encode()
        tag = self._tag(scope, data)
        cipher = bytes(a ^ b for a, b in zip(data, self._stream(tag, len(data)), strict=True))
        return _encode(tag + cipher)

    def open(self, scope: Sequence[str], cursor: str) -> str:
        """The content sealed for this scope; InvalidCursorError for anything else."""
        refused = InvalidCursorError("the cursor is not one this listing handed out: start "
                                     "again from the first page")
        if not cursor.isascii() or len(cursor) > MAX_CURSOR_CHARS:
            raise refused
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        except (binascii.Error, ValueError):
            raise refused from None
        # Only the one spelling this module writes: base64 decoding skips stray characters
        # and spare low bits, which would let altered text pass as the same cursor.
        if len(raw) <= TAG_BYTES or _encode(raw) != cursor:
            raise refused
        tag, cipher = raw[:TAG_BYTES], raw[TAG_BYTES:]
        data = bytes(a ^ b for a, b in zip(cipher, self._stream(tag, len(cipher)), strict=True))
        if not hmac.compare_digest(tag, self._tag(scope, data)):
            raise refused
        try:
            return data.decode()
        except UnicodeDecodeError:  # only reachable with the secret; refused all the same
            raise refused from None
