"""The value formats xAPI statements use: IRIs, UUIDs, language tags, timestamps, durations.

Each check answers a reason string when the value is wrong and None when it is right, so
the statement walker can name the field in its error.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

# A scheme, then anything without whitespace or the characters RFC 3987 excludes.
_IRI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:[^\s<>\"{}|\\^`]*$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                   r"[0-9a-fA-F]{12}$")
_MAILTO = re.compile(r"^mailto:[^@\s:/]+@[^@\s]+$")
_SHA1 = re.compile(r"^[0-9a-fA-F]{40}$")
_SHA2 = re.compile(r"^[0-9a-fA-F]{56}$|^[0-9a-fA-F]{64}$|^[0-9a-fA-F]{96}$|^[0-9a-fA-F]{128}$")
_VERSION = re.compile(r"^[12]\.0(\.\d+)?$")

# RFC 5646 well-formed language tags (grandfathered tags included by the irregular list).
_LANGTAG = re.compile(
    r"^(?:"
    r"(?:[A-Za-z]{2,3}(?:-[A-Za-z]{3}){0,3}|[A-Za-z]{4}|[A-Za-z]{5,8})"  # language
    r"(?:-[A-Za-z]{4})?"  # script
    r"(?:-(?:[A-Za-z]{2}|\d{3}))?"  # region
    r"(?:-(?:[A-Za-z0-9]{5,8}|\d[A-Za-z0-9]{3}))*"  # variants
    r"(?:-[0-9A-WY-Za-wy-z](?:-[A-Za-z0-9]{2,8})+)*"  # extensions
    r"(?:-x(?:-[A-Za-z0-9]{1,8})+)?"  # private use
    r"|x(?:-[A-Za-z0-9]{1,8})+"
    r"|en-GB-oed|i-ami|i-bnn|i-default|i-enochian|i-hak|i-klingon|i-lux|i-mingo|i-navajo"
    r"|i-pwn|i-tao|i-tay|i-tsu|sgn-BE-FR|sgn-BE-NL|sgn-CH-DE"
    r")$")

# RFC 3339 / ISO 8601 extended date-time; the zone may be missing (read as UTC).
_TIMESTAMP = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?"
    r"(Z|z|[+-]\d{2}:?\d{2}|[+-]\d{2})?$")

# ISO 8601 durations: PnYnMnDTnHnMnS (only the last part may have a fraction) or PnW.
_DURATION = re.compile(
    r"^P(?!$)(\d+(?:\.\d+)?Y)?(\d+(?:\.\d+)?M)?(\d+(?:\.\d+)?D)?"
    r"(T(?=\d)(\d+(?:\.\d+)?H)?(\d+(?:\.\d+)?M)?(\d+(?:\.\d+)?S)?)?$|^P\d+(?:\.\d+)?W$")


def iri_error(value: object) -> str | None:
    if not isinstance(value, str):
        return "must be an IRI string"
    if not _IRI.match(value):
        return "must be an absolute IRI with a scheme (e.g. http://...)"
    return None


def uuid_error(value: object) -> str | None:
    if not isinstance(value, str) or not _UUID.match(value):
        return "must be a UUID in its standard string form"
    return None


def mbox_error(value: object) -> str | None:
    if not isinstance(value, str) or not _MAILTO.match(value):
        return "must be a mailto: IRI of an email address"
    return None


def sha1_error(value: object) -> str | None:
    if not isinstance(value, str) or not _SHA1.match(value):
        return "must be the hex SHA-1 of a mailto IRI"
    return None


def sha2_error(value: object) -> str | None:
    if not isinstance(value, str) or not _SHA2.match(value):
        return "must be a hex SHA-2 digest"
    return None


def language_tag_error(value: object) -> str | None:
    if not isinstance(value, str) or not _LANGTAG.match(value):
        return "must be an RFC 5646 language tag"
    return None


def version_error(value: object) -> str | None:
    if not isinstance(value, str) or not _VERSION.match(value):
        return "must be 1.0, 1.0.x, 2.0 or 2.0.x"
    return None


def duration_error(value: object) -> str | None:
    if not isinstance(value, str) or not _DURATION.match(value):
        return "must be an ISO 8601 duration (e.g. PT1H30M)"
    return None


def parse_timestamp(value: object) -> datetime | None:
    """The instant an ISO 8601 timestamp names, or None when it is not one. RFC 3339 rules
    out the unknown-offset forms -00, -0000 and -00:00."""
    if not isinstance(value, str):
        return None
    match = _TIMESTAMP.match(value)
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(match.group(n)) for n in range(1, 7))
    fraction, zone = match.group(7), match.group(8)
    if zone in ("-00", "-0000", "-00:00"):
        return None
    micro = int((fraction[1:] + "000000")[:6]) if fraction else 0
    tz: timezone = UTC
    if zone and zone not in ("Z", "z"):
        digits = zone[1:].replace(":", "")
        hours, minutes = int(digits[:2]), int(digits[2:] or 0)
        if hours > 23 or minutes > 59:
            return None
        offset = timedelta(hours=hours, minutes=minutes)
        tz = timezone(-offset if zone[0] == "-" else offset)
    try:
        return datetime(year, month, day, hour, minute, min(second, 59), micro, tzinfo=tz)
    except ValueError:
        return None


def timestamp_error(value: object) -> str | None:
    if parse_timestamp(value) is None:
        return "must be an ISO 8601 date-time with a time zone (not -00:00)"
    return None


def format_stored(instant: datetime) -> str:
    """`stored` and response timestamps: UTC with milliseconds, like 2024-05-02T01:30:00.123Z."""
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
