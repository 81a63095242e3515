"""A fact's wire form: JSON decoded as sent (fractions exact), and the one canonical encoding
that is hashed (sorted keys, no spaces, UTF-8 as is)."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson


def canonical_json(value: Any) -> str:
    """The one serialisation that is hashed: sorted keys, no spaces, UTF-8 kept as is."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_fact_bytes(canonical: dict[str, Any]) -> bytes:
    """canonical_json(canonical) as UTF-8, for a canonical fact (strings, ints, booleans and
    nulls in dicts only): orjson spells these byte for byte as json.dumps does with sorted
    keys, compact separators and ensure_ascii=False (same escapes: \\n, \\t, \\u001f, raw
    non-ASCII), at a twentieth of the cost."""
    return orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS)


def canonical_time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _json_integer(text: str) -> int | Decimal:
    # Python refuses to make an int of more than 4300 digits (ValueError, not a decode
    # error); as a Decimal such a number reaches validation and is refused by its bounds.
    return int(text) if len(text) <= 64 else Decimal(text)


def _holds_a_fraction(value: Any) -> bool:
    kind = type(value)
    if kind is dict:
        items = value.values()
    elif kind is list:
        items = value
    else:
        return kind is float
    for item in items:
        kind = type(item)
        if kind is float or ((kind is dict or kind is list) and _holds_a_fraction(item)):
            return True
    return False


def decode_fact_json(text: str | bytes) -> Any:
    """Decode one JSON fact as sent: fractions become exact Decimals, never binary floats, so
    0.12345678901234567890123 is kept to its last digit. Raises json.JSONDecodeError (and
    UnicodeDecodeError for bytes that are not UTF-8).

    orjson decodes first (a third of the cost); a document it refuses (malformed, NaN, an
    integer past 64 bits, a lone surrogate, not UTF-8) or that holds a fraction is decoded
    again by the json module, so answers and errors are the json module's."""
    with contextlib.suppress(orjson.JSONDecodeError):
        data = orjson.loads(text)
        if not _holds_a_fraction(data):
            return data
    return json.loads(text, parse_float=Decimal, parse_int=_json_integer)
